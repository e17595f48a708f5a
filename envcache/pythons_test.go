package envcache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// fakePythons lays out a machine: binaries, a pyenv shim, a wrapper script,
// pyenv versions, a --python-dir prefix and a LAKEHOUSE_PYTHON link.
func fakePythons(t *testing.T) (root string, env map[string]string) {
	t.Helper()
	root = t.TempDir()
	bin := func(path string, script bool) {
		os.MkdirAll(filepath.Dir(path), 0o755)
		content := "\x7fELF"
		if script {
			content = "#!/bin/sh\nexec python3 \"$@\"\n"
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin(filepath.Join(root, "usr", "bin", "python3.11"), false)
	bin(filepath.Join(root, "usr", "bin", "python3.10"), false)
	bin(filepath.Join(root, "usr", "bin", "python3.10-config"), false)
	bin(filepath.Join(root, "usr", "local", "bin", "python3.10"), false)
	bin(filepath.Join(root, "shims", "python3.12"), true)
	bin(filepath.Join(root, "wrap", "python3.12"), true)
	bin(filepath.Join(root, "pyenv", "versions", "3.12.1", "bin", "python3.12"), false)
	bin(filepath.Join(root, "pyenv", "versions", "3.12.4", "bin", "python3.12"), false)
	bin(filepath.Join(root, "pyenv", "versions", "3.11.7", "bin", "python3.11"), false)
	bin(filepath.Join(root, "pyenv", "versions", "3.8.18", "bin", "python3.8"), false)
	os.MkdirAll(filepath.Join(root, "pyenv", "versions", "miniconda3", "bin"), 0o755)
	bin(filepath.Join(root, "opt", "py313", "bin", "python3.13"), false)
	os.MkdirAll(filepath.Join(root, "links"), 0o755)
	if err := os.Symlink(filepath.Join(root, "usr", "bin", "python3.11"), filepath.Join(root, "links", "python3")); err != nil {
		t.Fatal(err)
	}
	env = map[string]string{
		"PATH": strings.Join([]string{filepath.Join(root, "shims"), filepath.Join(root, "wrap"),
			filepath.Join(root, "usr", "bin"), filepath.Join(root, "usr", "local", "bin")}, string(os.PathListSeparator)),
		"PYENV_ROOT": filepath.Join(root, "pyenv"),
	}
	return root, env
}

func TestFindPythons(t *testing.T) {
	t.Parallel()
	root, env := fakePythons(t)
	py := func(version string, path ...string) Python {
		return Python{Version: version, Minor: PythonMinor(version), Path: filepath.Join(append([]string{root}, path...)...)}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		dirs []string
		want []Python
	}{
		{"pyenv newest patch first, then PATH; shims, scripts and equal names skipped", env, nil, []Python{
			py("3.12.4", "pyenv", "versions", "3.12.4", "bin", "python3.12"),
			py("3.12.1", "pyenv", "versions", "3.12.1", "bin", "python3.12"),
			py("3.11.7", "pyenv", "versions", "3.11.7", "bin", "python3.11"),
			py("3.11", "usr", "bin", "python3.11"),
			py("3.10", "usr", "bin", "python3.10"),
			py("3.8.18", "pyenv", "versions", "3.8.18", "bin", "python3.8"),
		}},
		{"LAKEHOUSE_PYTHON first, named by its link's target", with(env, "LAKEHOUSE_PYTHON", filepath.Join(root, "links", "python3")), nil, []Python{
			py("3.12.4", "pyenv", "versions", "3.12.4", "bin", "python3.12"),
			py("3.12.1", "pyenv", "versions", "3.12.1", "bin", "python3.12"),
			py("3.11", "usr", "bin", "python3.11"),
			py("3.11.7", "pyenv", "versions", "3.11.7", "bin", "python3.11"),
			py("3.10", "usr", "bin", "python3.10"),
			py("3.8.18", "pyenv", "versions", "3.8.18", "bin", "python3.8"),
		}},
		{"--python-dir before pyenv", env, []string{filepath.Join(root, "opt", "py313"), filepath.Join(root, "usr", "local")}, []Python{
			py("3.13", "opt", "py313", "bin", "python3.13"),
			py("3.12.4", "pyenv", "versions", "3.12.4", "bin", "python3.12"),
			py("3.12.1", "pyenv", "versions", "3.12.1", "bin", "python3.12"),
			py("3.11.7", "pyenv", "versions", "3.11.7", "bin", "python3.11"),
			py("3.11", "usr", "bin", "python3.11"),
			py("3.10", "usr", "local", "bin", "python3.10"),
			py("3.8.18", "pyenv", "versions", "3.8.18", "bin", "python3.8"),
		}},
		{"nothing", map[string]string{"PATH": filepath.Join(root, "shims")}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FindPythons(PythonSearch{Getenv: func(k string) string { return tc.env[k] }, Dirs: tc.dirs})
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FindPythons:\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func with(env map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for k, v := range env {
		out[k] = v
	}
	return out
}

func TestPythonFor(t *testing.T) {
	t.Parallel()
	found := []Python{
		{Version: "3.12.4", Minor: "3.12", Path: "/pyenv/3.12.4"},
		{Version: "3.12.1", Minor: "3.12", Path: "/pyenv/3.12.1"},
		{Version: "3.11", Minor: "3.11", Path: "/lakehouse_python"},
		{Version: "3.11.7", Minor: "3.11", Path: "/pyenv/3.11.7"},
		{Version: "3.10", Minor: "3.10", Path: "/usr/bin/python3.10"},
	}
	for _, tc := range []struct {
		version, want string // want "" for none
	}{
		{"3.12", "/pyenv/3.12.4"},
		{"3.12.1", "/pyenv/3.12.1"},
		{"3.12.2", ""}, // every 3.12 names its patch release
		{"3.11", "/lakehouse_python"},
		{"3.11.7", "/pyenv/3.11.7"},
		{"3.11.2", "/lakehouse_python"}, // running it tells
		{"3.10.13", "/usr/bin/python3.10"},
		{"3.9", ""},
		{"3", ""},
		{"banana", ""},
	} {
		t.Run(tc.version, func(t *testing.T) {
			got, ok := PythonFor(found, tc.version)
			if ok != (tc.want != "") || got.Path != tc.want {
				t.Errorf("PythonFor(%q) = %+v, %v; want %q", tc.version, got, ok, tc.want)
			}
		})
	}
}

// The binary a Cache runs for a version is the one PythonFor names (and
// so the plan), also when LAKEHOUSE_PYTHON puts another one first.
func TestFindRunsPythonFor(t *testing.T) {
	t.Parallel()
	machine := FindPythons(PythonSearch{})
	if len(machine) == 0 {
		t.Skip("no Python 3 on this machine")
	}
	override := map[string]string{"LAKEHOUSE_PYTHON": machine[len(machine)-1].Path}
	for _, search := range []PythonSearch{{}, {Getenv: func(k string) string {
		if v, ok := override[k]; ok {
			return v
		}
		return os.Getenv(k)
	}}} {
		f := &interpreters{search: search}
		found := FindPythons(search)
		for _, version := range []string{found[0].Minor, found[len(found)-1].Minor, found[len(found)-1].Version} {
			want, _ := PythonFor(found, version)
			in, err := f.Find(context.Background(), version)
			if err != nil {
				t.Fatalf("Find(%q): %v", version, err)
			}
			if in.Path != want.Path || in.Minor != want.Minor || !strings.HasPrefix(in.Version, want.Minor+".") {
				t.Errorf("Find(%q) = %+v; PythonFor names %+v", version, in, want)
			}
		}
	}
	if _, err := (&interpreters{}).Find(context.Background(), "3.99"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Find(3.99) = %v, want ErrNotFound", err)
	}
}
