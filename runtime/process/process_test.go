package process_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lakehouse-dev/lakehouse/runtime/launchertest"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

func TestLauncher(t *testing.T) {
	scratch := t.TempDir()
	launchertest.Run(t, process.New(process.Config{ScratchDir: scratch}), launchertest.Capabilities{NetworkIsolation: os.Geteuid() == 0, Isolation: true})
	left, _ := filepath.Glob(filepath.Join(scratch, "*"))
	if len(left) != 0 {
		t.Fatalf("scratch left behind: %v", left)
	}
}
