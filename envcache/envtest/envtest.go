// Package envtest gives tests a package cache shared between test runs, so
// that only the first run on a machine downloads and installs from PyPI.
package envtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lakehouse-dev/lakehouse/envcache"
)

// Root is the shared test cache: $LAKEHOUSE_TEST_CACHE, else
// $XDG_CACHE_HOME/lakehouse-test (~/.cache/lakehouse-test), else
// /tmp/lakehouse-test-cache.
func Root() string {
	if d := os.Getenv("LAKEHOUSE_TEST_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "lakehouse-test")
	}
	return filepath.Join(os.TempDir(), "lakehouse-test-cache")
}

// DownloadDir keeps downloaded wheels between runs.
func DownloadDir() string { return filepath.Join(Root(), "downloads") }

// Shared returns a cache whose installs persist between test runs. Its
// bytecode is finished at the end of the test, so later runs import fast.
func Shared(t testing.TB) *envcache.Cache {
	t.Helper()
	c := Open(t, envcache.Config{Dir: filepath.Join(Root(), "envcache"), DownloadDir: DownloadDir()})
	t.Cleanup(func() { c.Wait(context.Background()) }) // runs before Open's Close
	return c
}

// Fresh returns an empty cache in a temporary folder (downloads shared).
func Fresh(t testing.TB) *envcache.Cache {
	t.Helper()
	return Open(t, envcache.Config{Dir: t.TempDir(), DownloadDir: DownloadDir()})
}

// Open opens a cache and closes it at the end of the test (abandoning
// background bytecode compilation not started yet).
func Open(t testing.TB, cfg envcache.Config) *envcache.Cache {
	t.Helper()
	c, err := envcache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var (
	uvOnce sync.Once
	uvPath string
	uvErr  error
)

// UV returns a uv binary: $LAKEHOUSE_UV, uv on PATH, or one this function
// installs from PyPI (pip install --target) into the shared test cache.
func UV(t testing.TB) string {
	t.Helper()
	uvOnce.Do(func() {
		if p := os.Getenv("LAKEHOUSE_UV"); p != "" {
			uvPath = p
			return
		}
		if p, err := exec.LookPath("uv"); err == nil {
			uvPath = p
			return
		}
		dir := filepath.Join(Root(), "uv")
		bin := filepath.Join(dir, "bin", "uv")
		if _, err := os.Stat(bin); err == nil {
			uvPath = bin
			return
		}
		c, err := envcache.New(envcache.Config{Dir: t.TempDir()})
		if err != nil {
			uvErr = err
			return
		}
		ins := c.Interpreters(context.Background())
		if len(ins) == 0 {
			uvErr = fmt.Errorf("no Python interpreter to install uv with")
			return
		}
		out, err := exec.Command(ins[0].Path, "-m", "pip", "install", "-q", "--disable-pip-version-check",
			"--target", dir+".tmp", "uv").CombinedOutput()
		if err != nil {
			uvErr = fmt.Errorf("pip install uv: %v\n%s", err, out)
			return
		}
		os.RemoveAll(dir)
		if err := os.Rename(dir+".tmp", dir); err != nil {
			uvErr = err
			return
		}
		uvPath = bin
	})
	if uvErr != nil {
		t.Fatal(uvErr)
	}
	return uvPath
}

// Env assembles spec in the shared cache, failing the test on error.
func Env(t testing.TB, python string, reqs ...string) *envcache.Environment {
	t.Helper()
	env, err := Shared(t).Environment(context.Background(), envcache.Spec{Python: python, Requirements: reqs})
	if err != nil {
		t.Fatalf("environment %s %v: %v", python, reqs, err)
	}
	return env
}
