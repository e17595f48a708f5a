package process_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

// TestRemoveLeftovers: the scratch folders of a launcher whose process is
// gone are removed; those of a live one, and anything else, stay.
func TestRemoveLeftovers(t *testing.T) {
	dir := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(p, "out"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dead := mk(process.ScratchPrefix(gone.Process.Pid) + "123")
	live := mk(process.ScratchPrefix(os.Getpid()) + "456")
	others := []string{mk("lakehouse-fn-x-1"), mk("lakehouse-fn-0-1"), mk("lakehouse-fnx"), mk("other")}
	process.RemoveLeftovers(dir)
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead launcher's folder is still there: %v", err)
	}
	for _, p := range append(others, live) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
}
