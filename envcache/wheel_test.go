package envcache

import (
	"archive/zip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func writeZip(t *testing.T, files map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "demo-1.0-py3-none-any.whl")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[n]))
	}
	zw.Close()
	f.Close()
	return p
}

func TestUnpackWheel(t *testing.T) {
	whl := writeZip(t, map[string]string{
		"demo/__init__.py":                       "x = 1\n",
		"demo-1.0.dist-info/METADATA":            "Name: demo\n",
		"demo-1.0.data/purelib/demo_pure.py":     "p = 1\n",
		"demo-1.0.data/platlib/demo_plat/mod.py": "q = 1\n",
		"demo-1.0.data/scripts/demo-cli":         "#!python\n",
		"demo-1.0.data/headers/demo.h":           "int x;\n",
		"demo-1.0.data/data/share/demo.txt":      "data\n",
	})
	dir := t.TempDir()
	if err := unpackWheel(whl, dir); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, rel)
		}
		return nil
	})
	sort.Strings(got)
	want := "bin/demo-cli demo-1.0.dist-info/METADATA demo/__init__.py demo_plat/mod.py demo_pure.py"
	if strings.Join(got, " ") != want {
		t.Fatalf("files %v, want %s", got, want)
	}
}

func TestUnpackWheelRefusesEscapes(t *testing.T) {
	for _, name := range []string{"../evil.py", "demo/../../evil.py", "/abs.py", "demo-1.0.data/purelib/../../evil.py", `demo\evil.py`} {
		t.Run(name, func(t *testing.T) {
			whl := writeZip(t, map[string]string{name: "boom"})
			dir := filepath.Join(t.TempDir(), "root")
			if err := unpackWheel(whl, dir); err == nil {
				t.Fatalf("%s was unpacked", name)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "evil.py")); err == nil {
				t.Fatal("a file escaped the install folder")
			}
		})
	}
}

func TestParsePylock(t *testing.T) {
	lock := `lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "Fonttools"
version = "4.68.0"
sdist = { url = "https://x/fonttools-4.68.0.tar.gz", upload-time = 2026-10-27T16:30:26Z, hashes = { sha256 = "` + strings.Repeat("a", 64) + `" } }
wheels = [
    { url = "https://x/fonttools-4.68.0-py3-none-any.whl", upload-time = 2026-10-27T16:30:24Z, hashes = { sha256 = "` + strings.Repeat("b", 64) + `" } },
    { url = "https://x/fonttools-4.68.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", upload-time = 2026-10-27T16:28:09Z, hashes = { sha256 = "` + strings.Repeat("c", 64) + `" } },
]

[[packages]]
name = "docopt"
version = "0.6.2"
sdist = { url = "https://x/docopt-0.6.2.tar.gz", upload-time = 2014-06-16T11:18:57Z, hashes = { sha256 = "` + strings.Repeat("d", 64) + `" } }
`
	tags := map[string]int{"cp311-cp311-manylinux_2_17_x86_64": 3, "py3-none-any": 40}
	ds, err := parsePylock(lock, tags)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Name != "docopt" || !strings.HasSuffix(ds[0].URL, ".tar.gz") ||
		ds[1].Name != "fonttools" || !strings.Contains(ds[1].URL, "cp311") || ds[1].SHA256 != strings.Repeat("c", 64) {
		t.Fatalf("%+v", ds)
	}
}

func TestPipReason(t *testing.T) {
	out := `Collecting attrs==22.2.0
  Using cached attrs-22.2.0-py3-none-any.whl
ERROR: Cannot install attrs==22.2.0 and attrs==23.1.0 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested attrs==22.2.0
    The user requested attrs==23.1.0

To fix this you could try to:
1. loosen the range of package versions you've specified

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/
`
	got := pipReason(out)
	want := "Cannot install attrs==22.2.0 and attrs==23.1.0 because these package versions have conflicting dependencies. The conflict is caused by: The user requested attrs==22.2.0; The user requested attrs==23.1.0"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// FuzzUnpackWheel: whatever the archive holds, nothing is written outside
// the install folder.
func FuzzUnpackWheel(f *testing.F) {
	for _, files := range []map[string]string{
		{"demo/__init__.py": "x"},
		{"demo-1.0.data/purelib/a.py": "x", "../b.py": "y"},
	} {
		dir := f.TempDir()
		p := filepath.Join(dir, "seed.whl")
		fh, _ := os.Create(p)
		zw := zip.NewWriter(fh)
		for n, c := range files {
			w, _ := zw.Create(n)
			w.Write([]byte(c))
		}
		zw.Close()
		fh.Close()
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		whl := filepath.Join(base, "in.whl")
		if err := os.WriteFile(whl, data, 0o644); err != nil {
			t.Fatal(err)
		}
		unpackWheel(whl, filepath.Join(base, "root"))
		ents, _ := os.ReadDir(base)
		for _, e := range ents {
			if e.Name() != "in.whl" && e.Name() != "root" {
				t.Fatalf("%s written outside the install folder", e.Name())
			}
		}
	})
}
