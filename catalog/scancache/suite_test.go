package scancache_test

import (
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog/scancache/scancachetest"
)

// TestSuiteDir runs the Source conformance suite over a directory.
func TestSuiteDir(t *testing.T) {
	t.Parallel()
	scancachetest.Run(t, func(t *testing.T) scancachetest.Store { return scancachetest.DirStore{Dir: t.TempDir()} })
}
