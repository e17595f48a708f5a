// Package lhbuild builds the lakehouse command for benchmarks that measure
// it as a user runs it: a whole process of the real binary, not a test
// binary.
package lhbuild

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
	"github.com/lakehouse-dev/lakehouse/internal/repodir"
)

var (
	once  sync.Once
	built string
	err   error
)

// Binary builds the lakehouse command (the module root's main package,
// with the duckdb_arrow tag) once per test process into the test cache,
// $LAKEHOUSE_TEST_CACHE/bin/lakehouse, and returns its path: go build
// leaves an up-to-date binary as it is, so later runs do not link again.
func Binary(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		root, e := repodir.Root()
		if e != nil {
			err = e
			return
		}
		built = filepath.Join(envtest.Root(), "bin", "lakehouse")
		cmd := exec.Command("go", "build", "-tags", "duckdb_arrow", "-o", built, ".")
		cmd.Dir = root
		if out, e := cmd.CombinedOutput(); e != nil {
			err = fmt.Errorf("go build the lakehouse binary: %v\n%s", e, out)
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	return built
}
