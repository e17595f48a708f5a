package envcache_test

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
)

// TestVerifyTamper damages an installed package folder the ways a
// hostile function with the owner's rights could: Verify reports each
// difference, an environment refuses the folder with a hint to run
// `env verify --fix`, Fix removes it and the next environment installs
// it again. A change of file metadata alone (a chmod undone) is only a
// stale stamp: Fix renews it and keeps the package.
func TestVerifyTamper(t *testing.T) {
	ctx := context.Background()
	c := envtest.Open(t, envcache.Config{Dir: t.TempDir(), DownloadDir: envtest.DownloadDir(),
		RunnerRequirements: []string{}, SyncCompile: true})
	spec := envcache.Spec{Python: "3.11", Requirements: []string{"six", "attrs"}}
	env, err := c.Environment(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Verify(ctx, envcache.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differ) != 0 || rep.Packages != 2 || rep.Files < 20 {
		t.Fatalf("fresh install: %d packages, %d files, differ %+v", rep.Packages, rep.Files, rep.Differ)
	}
	attrsDir := func(env *envcache.Environment) string {
		for _, p := range env.Packages {
			if p.Name == "attrs" {
				return p.Dir
			}
		}
		t.Fatal("no attrs in the environment")
		return ""
	}
	// writable opens a folder for a change and closes it again.
	writable := func(dir string, fn func()) {
		os.Chmod(dir, 0o755)
		fn()
		os.Chmod(dir, 0o555)
	}
	recordOf := func(dir string) string {
		ms, _ := filepath.Glob(filepath.Join(dir, "attrs-*.dist-info", "RECORD"))
		if len(ms) != 1 {
			t.Fatalf("RECORD of attrs: %v", ms)
		}
		return ms[0]
	}
	cases := []struct {
		name   string
		tamper func(dir string) string // returns the path that differs
		kind   string
	}{
		{"append to a file", func(dir string) string {
			f := filepath.Join(dir, "attr", "__init__.py")
			os.Chmod(f, 0o644)
			fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fh.WriteString("\nimport os; os.system('id')\n")
			fh.Close()
			os.Chmod(f, 0o444)
			return "attr/__init__.py"
		}, envcache.DiffModified},
		{"same size, times restored", func(dir string) string {
			f := filepath.Join(dir, "attr", "validators.py")
			st, _ := os.Stat(f)
			b, _ := os.ReadFile(f)
			b[len(b)-2] ^= 1
			os.Chmod(f, 0o644)
			os.WriteFile(f, b, 0o444)
			os.Chmod(f, 0o444)
			os.Chtimes(f, st.ModTime(), st.ModTime())
			return "attr/validators.py"
		}, envcache.DiffModified},
		{"chmod a folder", func(dir string) string {
			os.Chmod(filepath.Join(dir, "attr"), 0o777)
			return "attr"
		}, envcache.DiffMode},
		{"delete a file", func(dir string) string {
			writable(filepath.Join(dir, "attr"), func() { os.Remove(filepath.Join(dir, "attr", "filters.py")) })
			return "attr/filters.py"
		}, envcache.DiffMissing},
		{"add a file", func(dir string) string {
			writable(filepath.Join(dir, "attr"), func() {
				os.WriteFile(filepath.Join(dir, "attr", "evil.py"), []byte("x = 1\n"), 0o444)
			})
			return "attr/evil.py"
		}, envcache.DiffAdded},
		{"replace a pyc", func(dir string) string {
			ms, _ := filepath.Glob(filepath.Join(dir, "attr", "__pycache__", "__init__.*.pyc"))
			if len(ms) != 1 {
				t.Fatalf("bytecode of attr: %v", ms)
			}
			os.Chmod(ms[0], 0o644)
			os.WriteFile(ms[0], []byte("not bytecode"), 0o444)
			os.Chmod(ms[0], 0o444)
			rel, _ := filepath.Rel(dir, ms[0])
			return filepath.ToSlash(rel)
		}, envcache.DiffModified},
		{"rewrite RECORD", func(dir string) string {
			rec := recordOf(dir)
			b, _ := os.ReadFile(rec)
			os.Chmod(rec, 0o644)
			os.WriteFile(rec, append(b, "attr/evil.py,,\n"...), 0o444)
			os.Chmod(rec, 0o444)
			rel, _ := filepath.Rel(dir, rec)
			return filepath.ToSlash(rel)
		}, envcache.DiffModified},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := attrsDir(env)
			path := tc.tamper(dir)
			rep, err := c.Verify(ctx, envcache.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Differ) != 1 || rep.Differ[0].Package.Name != "attrs" {
				t.Fatalf("differ %+v, want attrs", rep.Differ)
			}
			found := false
			for _, d := range rep.Differ[0].Differences {
				found = found || d.Path == path && d.Kind == tc.kind
			}
			if !found {
				t.Fatalf("differences %+v, want %s %s", rep.Differ[0].Differences, tc.kind, path)
			}
			// An environment does not use the folder silently.
			_, err = c.Environment(ctx, spec)
			var de *envcache.DamageError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), "lakehouse env verify --fix") {
				t.Fatalf("environment with a damaged attrs: %v", err)
			}
			// --fix removes it; the next environment installs it again.
			rep, err = c.Verify(ctx, envcache.VerifyOptions{Fix: true})
			if err != nil || len(rep.Differ) != 1 || !rep.Differ[0].Removed {
				t.Fatalf("fix: %+v %v", rep, err)
			}
			installs := c.Installs()
			if env, err = c.Environment(ctx, spec); err != nil {
				t.Fatal(err)
			}
			if c.Installs() != installs+1 {
				t.Fatalf("installs %d after fix, want %d", c.Installs(), installs+1)
			}
			if rep, err := c.Verify(ctx, envcache.VerifyOptions{}); err != nil || len(rep.Differ) != 0 {
				t.Fatalf("after reinstall: %+v %v", rep, err)
			}
		})
	}
	t.Run("stale stamp", func(t *testing.T) {
		dir := attrsDir(env)
		f := filepath.Join(dir, "attr", "__init__.py")
		os.Chmod(f, 0o644)
		os.Chmod(f, 0o444)
		if _, err := c.Environment(ctx, spec); err == nil {
			t.Fatal("an environment used a folder whose stamp differs")
		}
		rep, err := c.Verify(ctx, envcache.VerifyOptions{Fix: true})
		if err != nil || len(rep.Differ) != 1 || rep.Differ[0].Damaged() || !rep.Differ[0].Restamped {
			t.Fatalf("stale stamp: %+v %v", rep, err)
		}
		installs := c.Installs()
		if _, err := c.Environment(ctx, spec); err != nil || c.Installs() != installs {
			t.Fatalf("after restamp: %v, installs %d→%d", err, installs, c.Installs())
		}
	})
}

// TestStampWhileCompiling: bytecode compiled in the background changes a
// folder under its lock; environments assembled meanwhile use it, and
// the folder verifies clean afterwards.
func TestStampWhileCompiling(t *testing.T) {
	ctx := context.Background()
	c := envtest.Open(t, envcache.Config{Dir: t.TempDir(), DownloadDir: envtest.DownloadDir(), RunnerRequirements: []string{}})
	spec := envcache.Spec{Python: "3.11", Requirements: []string{"attrs"}}
	deadline := time.Now().Add(time.Minute)
	for i := 0; i < 20 && time.Now().Before(deadline); i++ {
		if _, err := c.Environment(ctx, spec); err != nil {
			t.Fatalf("environment %d: %v", i, err)
		}
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Verify(ctx, envcache.VerifyOptions{})
	if err != nil || len(rep.Differ) != 0 {
		t.Fatalf("after compiling: %+v %v", rep, err)
	}
	pkgs, _ := c.Packages()
	if len(pkgs) != 1 || !pkgs[0].Compiled {
		t.Fatalf("packages %+v, want attrs compiled", pkgs)
	}
}

// BenchmarkVerify is `lakehouse env verify` over a pandas + prophet
// environment (goal: at most 1 s), installed in the shared test cache
// (LAKEHOUSE_TEST_CACHE, its envcache-verify folder) and compiled first, as `env install` leaves it.
// The stamp check an environment makes of every folder is measured too.
// Run: go test -run '^$' -bench Verify -benchtime 5x ./envcache
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	// A cache of its own beside the shared one (downloads shared): other
	// test runs, of other versions, do not change it meanwhile.
	c := envtest.Open(b, envcache.Config{Dir: filepath.Join(envtest.Root(), "envcache-verify"), DownloadDir: envtest.DownloadDir()})
	env, err := c.Environment(ctx, envcache.Spec{Python: "3.11", Requirements: []string{"pandas", "prophet"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		b.Fatal(err)
	}
	// Only this environment's packages: the shared cache holds others.
	var hashes []string
	for _, p := range env.Packages {
		hashes = append(hashes, p.Hash)
	}
	// CPU seconds per operation: the machine running the benchmark may be
	// busy with other work, which stretches wall time, not this.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.Run("verify", func(b *testing.B) {
		var rep *envcache.VerifyReport
		c0 := cpu()
		defer func() { b.ReportMetric((cpu()-c0).Seconds()/float64(b.N), "cpu-s/op") }()
		for i := 0; i < b.N; i++ {
			if rep, err = c.Verify(ctx, envcache.VerifyOptions{Only: hashes}); err != nil {
				b.Fatal(err)
			}
		}
		if len(rep.Differ) != 0 {
			b.Fatalf("differences: %+v", rep.Differ[0])
		}
		b.ReportMetric(float64(rep.Packages), "packages")
		b.ReportMetric(float64(rep.Files), "files")
		b.ReportMetric(float64(rep.Bytes)/1e6, "MB")
	})
	// The stamp check an environment makes: every folder of it.
	b.Run("stamps", func(b *testing.B) {
		c0 := cpu()
		for i := 0; i < b.N; i++ {
			for _, p := range env.Packages {
				if _, err := envcache.WalkStamp(p.Dir); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric((cpu()-c0).Seconds()/float64(b.N), "cpu-s/op")
	})
	b.Run("assemble", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := c.Environment(ctx, envcache.Spec{Python: "3.11", Requirements: []string{"pandas", "prophet"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestVerifyShippedBytecode: a wheel that ships a stale pyc, hashed in
// its RECORD (numpy 1.26.4 ships
// numpy/distutils/__pycache__/conv_template.cpython-310.pyc). compileall
// rewrites it, compiled at install or in the background; the folder still
// verifies clean, and a change to that pyc afterwards is still caught.
func TestVerifyShippedBytecode(t *testing.T) {
	ctx := context.Background()
	wheels := t.TempDir()
	writeWheel(t, filepath.Join(wheels, "shippy-1.0-py3-none-any.whl"), map[string]string{
		"shippy/__init__.py":                          "X = 1\n",
		"shippy/__pycache__/__init__.cpython-311.pyc": "a pyc compiled on the packager's machine\n",
		"shippy-1.0.dist-info/METADATA":               "Metadata-Version: 2.1\nName: shippy\nVersion: 1.0\n",
		"shippy-1.0.dist-info/WHEEL":                  "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	})
	for _, sync := range []bool{true, false} {
		t.Run(map[bool]string{true: "compiled at install", false: "compiled in the background"}[sync], func(t *testing.T) {
			c := envtest.Open(t, envcache.Config{Dir: t.TempDir(), Resolver: "pip", RunnerRequirements: []string{}, SyncCompile: sync,
				Index: envcache.IndexOptions{NoIndex: true, FindLinks: []string{wheels}}})
			env, err := c.Environment(ctx, envcache.Spec{Python: "3.11", Requirements: []string{"shippy"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			pyc := filepath.Join(env.Packages[0].Dir, "shippy", "__pycache__", "__init__.cpython-311.pyc")
			if b, err := os.ReadFile(pyc); err != nil || strings.HasPrefix(string(b), "a pyc compiled") {
				t.Fatalf("the shipped pyc was not compiled again (%v): the test proves nothing", err)
			}
			rep, err := c.Verify(ctx, envcache.VerifyOptions{})
			if err != nil || len(rep.Differ) != 0 {
				t.Fatalf("a freshly installed package differs: %v %v", differences(rep), err)
			}
			os.Chmod(pyc, 0o644)
			os.WriteFile(pyc, []byte("injected bytecode"), 0o444)
			os.Chmod(pyc, 0o444)
			rep, err = c.Verify(ctx, envcache.VerifyOptions{})
			if err != nil || len(rep.Differ) != 1 || len(rep.Differ[0].Differences) != 1 ||
				rep.Differ[0].Differences[0].Kind != envcache.DiffModified {
				t.Fatalf("a replaced pyc: %v %v", differences(rep), err)
			}
		})
	}
}

func differences(rep *envcache.VerifyReport) []envcache.Difference {
	var out []envcache.Difference
	if rep == nil {
		return nil
	}
	for _, pc := range rep.Differ {
		out = append(out, pc.Differences...)
	}
	return out
}

// writeWheel writes a wheel of files at path, with the RECORD that hashes
// them.
func writeWheel(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var record strings.Builder
	names := make([]string, 0, len(files))
	for n, body := range files {
		names = append(names, n)
		sum := sha256.Sum256([]byte(body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(body))
	}
	sort.Strings(names)
	var info string
	for _, n := range names {
		if d, _, ok := strings.Cut(n, "/"); ok && strings.HasSuffix(d, ".dist-info") {
			info = d
		}
	}
	rec := info + "/RECORD"
	record.WriteString(rec + ",,\n")
	names = append(names, rec)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		body, ok := files[n]
		if !ok {
			body = record.String()
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}
