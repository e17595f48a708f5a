package envcache_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// resolvers are the resolver configurations every resolution test runs
// with: pip (always there) and uv (installed by envtest when missing).
func resolvers(t *testing.T) map[string]envcache.Config {
	return map[string]envcache.Config{
		"pip": {Resolver: "pip", DownloadDir: envtest.DownloadDir()},
		"uv":  {Resolver: "uv", UV: envtest.UV(t), DownloadDir: envtest.DownloadDir()},
	}
}

func TestEnvironmentSmallPackages(t *testing.T) {
	for name, cfg := range resolvers(t) {
		t.Run(name, func(t *testing.T) {
			cfg.Dir = t.TempDir()
			// pyarrow is added to every spec; unpacking it is slow under
			// -race, so only the uv run keeps it.
			arrow := name == "uv"
			if !arrow {
				cfg.RunnerRequirements = []string{}
			}
			testEnvironmentSmallPackages(t, envtest.Open(t, cfg), arrow)
		})
	}
}

func testEnvironmentSmallPackages(t *testing.T, c *envcache.Cache, arrow bool) {
	ctx := context.Background()
	spec := envcache.Spec{Python: "3.11", Requirements: []string{"six", "attrs", "tomli"}}
	env, err := c.Environment(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(env.Python.Version, "3.11.") {
		t.Fatalf("python %s", env.Python.Version)
	}
	// Bytecode is compiled in the background, with the folders briefly
	// writable by their owner.
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range env.Packages {
		names[p.Name] = true
		if st, err := os.Stat(p.Dir); err != nil || st.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s: folder %s is not read-only (%v)", p.Name, p.Dir, err)
		}
	}
	want := []string{"six", "attrs", "tomli"}
	imports := "import six, attr, tomli"
	if arrow {
		want = append(want, "pyarrow")
		imports += ", pyarrow"
	} else if names["pyarrow"] {
		t.Errorf("pyarrow installed without runner requirements")
	}
	for _, n := range want {
		if !names[n] {
			t.Errorf("%s missing from %v", n, names)
		}
	}
	if c.ResolverCalls() != 1 {
		t.Fatalf("resolver calls %d", c.ResolverCalls())
	}
	// The packages import from their folders with the interpreter isolated
	// from its own site-packages.
	cmd := exec.Command(env.Python.Path, "-s", "-S", "-c", imports+"; print(six.__file__)")
	cmd.Env = []string{"PYTHONPATH=" + strings.Join(env.Paths(), ":")}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), filepath.Dir(env.Packages[0].Dir)) {
		t.Fatalf("import: %v\n%s", err, out)
	}
	// A repeat costs no resolver call and no install.
	installs := c.Installs()
	env2, err := c.Environment(ctx, envcache.Spec{Python: "3.11", Requirements: []string{"tomli", "attrs", "six"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.ResolverCalls() != 1 || c.Installs() != installs {
		t.Fatalf("repeat: resolver calls %d, installs %d→%d", c.ResolverCalls(), installs, c.Installs())
	}
	if strings.Join(env2.Paths(), ":") != strings.Join(env.Paths(), ":") {
		t.Fatalf("repeat assembled a different environment")
	}
	pkgs, err := c.Packages()
	if err != nil || len(pkgs) != len(env.Packages) {
		t.Fatalf("packages %d, %v", len(pkgs), err)
	}
}

func TestResolveErrors(t *testing.T) {
	for name, cfg := range resolvers(t) {
		t.Run(name, func(t *testing.T) {
			cfg.Dir = t.TempDir()
			testResolveErrors(t, envtest.Open(t, cfg))
		})
	}
}

func testResolveErrors(t *testing.T, c *envcache.Cache) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		spec envcache.Spec
		want []string
	}{
		{"unknown package", envcache.Spec{Python: "3.11", Requirements: []string{"no-such-package-lakehouse-xyzzy"}},
			[]string{"no-such-package-lakehouse-xyzzy"}},
		{"conflict", envcache.Spec{Python: "3.11", Requirements: []string{"attrs==23.1.0", "attrs==22.2.0"}},
			[]string{"attrs==23.1.0", "attrs==22.2.0"}},
		{"bad version", envcache.Spec{Python: "3.x"}, []string{"invalid Python version"}},
		{"option injection", envcache.Spec{Python: "3.11", Requirements: []string{"--index-url=http://evil"}}, []string{"invalid pip requirement"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Environment(ctx, tc.spec)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err %v, want invalid argument", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error is not one paragraph: %q", err)
			}
			t.Log(err)
		})
	}
}

func TestMissingPython(t *testing.T) {
	c := envtest.Fresh(t)
	_, err := c.Environment(context.Background(), envcache.Spec{Python: "3.4"})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "3.11.") {
		t.Fatalf("err %v", err)
	}
	t.Log(err)
}

// Eight functions asking at once for the same uncached packages install
// each of them once.
func TestConcurrentInstallOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	spec := envcache.Spec{Python: "3.12", Requirements: []string{"six==1.16.0", "tomli==2.0.1"}}
	// Resolve once, so the eight share one lock file.
	first := envtest.Open(t, envcache.Config{Dir: dir, DownloadDir: envtest.DownloadDir(), RunnerRequirements: []string{}})
	if _, _, err := first.Resolve(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	caches := make([]*envcache.Cache, 8)
	errs := make([]error, 8)
	paths := make([]string, 8)
	for i := range caches {
		// One Cache each, as separate processes would have.
		caches[i] = envtest.Open(t, envcache.Config{Dir: dir, DownloadDir: envtest.DownloadDir(), RunnerRequirements: []string{}})
		wg.Add(1)
		go func() {
			defer wg.Done()
			env, err := caches[i].Environment(ctx, spec)
			errs[i] = err
			if err == nil {
				paths[i] = strings.Join(env.Paths(), ":")
			}
		}()
	}
	wg.Wait()
	var installs int64
	for i, c := range caches {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if paths[i] != paths[0] {
			t.Fatalf("different environments: %s vs %s", paths[i], paths[0])
		}
		installs += c.Installs()
		if c.ResolverCalls() != 0 {
			t.Errorf("cache %d ran the resolver", i)
		}
	}
	pkgs, _ := first.Packages()
	if installs != int64(len(pkgs)) {
		t.Fatalf("%d installs for %d packages", installs, len(pkgs))
	}
}

func TestLocalWheelFolder(t *testing.T) {
	// An air-gapped machine: wheels in a folder, no index.
	ctx := context.Background()
	py := envtest.Env(t, "3.11").Python.Path
	wheels := t.TempDir()
	cmd := exec.Command(py, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:", "-d", wheels, "six==1.16.0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip download: %v\n%s", err, out)
	}
	c := envtest.Open(t, envcache.Config{Dir: t.TempDir(), Resolver: "pip", RunnerRequirements: []string{},
		Index: envcache.IndexOptions{NoIndex: true, FindLinks: []string{wheels}}})
	env, err := c.Environment(ctx, envcache.Spec{Python: "3.11", Requirements: []string{"six"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range env.Packages {
		if !strings.HasPrefix(p.URL, "file://") {
			t.Errorf("%s from %s", p.Name, p.URL)
		}
	}
	_, err = c.Environment(ctx, envcache.Spec{Python: "3.11", Requirements: []string{"attrs"}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("attrs without an index: %v", err)
	}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	c := envtest.Open(t, envcache.Config{Dir: t.TempDir(), DownloadDir: envtest.DownloadDir(), RunnerRequirements: []string{}})
	if _, err := c.Environment(ctx, envcache.Spec{Python: "3.11", Requirements: []string{"six"}}); err != nil {
		t.Fatal(err)
	}
	removed, err := c.GC(ctx, envcache.GCOptions{})
	if err != nil || len(removed) != 0 {
		t.Fatalf("gc removed %d packages still used by a resolution (%v)", len(removed), err)
	}
	// Dropping every resolution makes every package collectable.
	removed, err = c.GC(ctx, envcache.GCOptions{OlderThan: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	pkgs, _ := c.Packages()
	if len(removed) == 0 || len(pkgs) != 0 {
		t.Fatalf("gc removed %d, %d left", len(removed), len(pkgs))
	}
}

// A package released only as an sdist is built into a wheel first.
func TestSdist(t *testing.T) {
	for name, cfg := range resolvers(t) {
		t.Run(name, func(t *testing.T) {
			cfg.Dir = t.TempDir()
			cfg.RunnerRequirements = []string{}
			c := envtest.Open(t, cfg)
			env, err := c.Environment(context.Background(), envcache.Spec{Python: "3.11", Requirements: []string{"docopt==0.6.2"}})
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, p := range env.Packages {
				if p.Name == "docopt" {
					found = strings.HasSuffix(p.Filename, ".tar.gz")
					if _, err := os.Stat(filepath.Join(p.Dir, "docopt.py")); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !found {
				t.Fatal("docopt not installed from its sdist")
			}
			cmd := exec.Command(env.Python.Path, "-s", "-S", "-c", "import docopt; print(docopt.__version__)")
			cmd.Env = []string{"PYTHONPATH=" + strings.Join(env.Paths(), ":")}
			if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "0.6.2" {
				t.Fatalf("%v %s", err, out)
			}
		})
	}
}

// --python-dir finds an interpreter that neither pyenv nor PATH offers.
func TestPythonDir(t *testing.T) {
	ms, _ := filepath.Glob("/root/.pyenv/versions/3.12.*")
	if len(ms) == 0 {
		t.Skip("no Python 3.12 prefix to point at")
	}
	t.Setenv("PYENV_ROOT", t.TempDir())
	t.Setenv("PATH", "/usr/bin:/bin")
	c := envtest.Open(t, envcache.Config{Dir: t.TempDir(), PythonDirs: []string{ms[0]}})
	ins := c.Interpreters(context.Background())
	var got []string
	for _, in := range ins {
		got = append(got, in.Version)
		if strings.HasPrefix(in.Version, "3.12.") && !strings.HasPrefix(in.Path, ms[0]) {
			t.Fatalf("3.12 from %s", in.Path)
		}
	}
	if len(ins) == 0 || !strings.HasPrefix(ins[0].Version, "3.12.") && !strings.Contains(strings.Join(got, " "), "3.12.") {
		t.Fatalf("interpreters %v", got)
	}
}

// pathWithoutUV is $PATH without the folders that hold a uv.
func pathWithoutUV() string {
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, "uv")); err != nil {
			keep = append(keep, d)
		}
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}

// A machine without uv resolves with the uv the cache installs from the
// index (PyPI, or $PIP_INDEX_URL), not with pip.
func TestResolveWithOwnUV(t *testing.T) {
	t.Setenv("PATH", pathWithoutUV())
	t.Setenv("LAKEHOUSE_UV", "")
	t.Setenv("LAKEHOUSE_RESOLVER", "")
	c := envtest.Open(t, envcache.Config{Dir: t.TempDir(), DownloadDir: envtest.DownloadDir(), RunnerRequirements: []string{}})
	res, _, err := c.Resolve(context.Background(), envcache.Spec{Python: "3.11", Requirements: []string{"six"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resolver != "uv" {
		t.Fatalf("resolved with %s", res.Resolver)
	}
	if st, err := os.Stat(c.UVPath()); err != nil || st.Mode().Perm() != 0o555 {
		t.Fatalf("the cache's uv %s: %v", c.UVPath(), err)
	}
	if !strings.Contains(c.UVPath(), "uv-"+envcache.UVVersion) {
		t.Fatalf("uv at %s", c.UVPath())
	}
	// The pip resolver stays available.
	t.Setenv("LAKEHOUSE_RESOLVER", "pip")
	p := envtest.Open(t, envcache.Config{Dir: t.TempDir(), DownloadDir: envtest.DownloadDir(), RunnerRequirements: []string{}})
	if res, _, err := p.Resolve(context.Background(), envcache.Spec{Python: "3.11", Requirements: []string{"six"}}); err != nil || res.Resolver != "pip" {
		t.Fatalf("LAKEHOUSE_RESOLVER=pip: %+v %v", res, err)
	}
}
