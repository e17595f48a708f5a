// Package envtest gives tests a package cache shared between test runs, so
// that only the first run on a machine downloads and installs from PyPI.
package envtest

import (
	"context"
	"os"
	"path/filepath"
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

// Shared returns a cache whose installs persist between test runs.
func Shared(t testing.TB) *envcache.Cache {
	t.Helper()
	c, err := envcache.New(envcache.Config{Dir: filepath.Join(Root(), "envcache"), DownloadDir: DownloadDir()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Fresh returns an empty cache in a temporary folder (downloads shared).
func Fresh(t testing.TB) *envcache.Cache {
	t.Helper()
	c, err := envcache.New(envcache.Config{Dir: t.TempDir(), DownloadDir: DownloadDir()})
	if err != nil {
		t.Fatal(err)
	}
	return c
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
