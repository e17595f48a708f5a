package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
)

// moveTo points le at dataDir (after the directory moved or was copied).
func (le *lakehouseEnv) moveTo(dataDir string) {
	le.dataDir = dataDir
	le.env[envDataDir], le.env["HOME"] = dataDir, dataDir
}

// TestMovedDataDir: a data dir moved elsewhere keeps working — its tables
// read, new imports land in its own warehouse, doctor finds every file —
// although the table metadata names the files at the old place.
func TestMovedDataDir(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	const sql = "SELECT count(*) AS n FROM sales.transactions"
	rows := le.count(sql)
	old := le.dataDir
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(old, moved); err != nil {
		t.Fatal(err)
	}
	le.moveTo(moved)
	if got := le.count(sql); got != rows {
		t.Fatalf("after the move: %q, want %q", got, rows)
	}
	le.mustLH("table", "import", "sales.transactions", "--from", testdataDir(t, "sample", "transactions_more"))
	if got := le.count(sql); got == rows {
		t.Fatalf("the import after the move added nothing: %q", got)
	}
	le.mustLH("doctor")
	if _, err := os.Stat(old); err == nil {
		t.Fatalf("something was written at the old place %s", old)
	}
	// Moved back: still fine.
	if err := os.Rename(moved, old); err != nil {
		t.Fatal(err)
	}
	le.moveTo(old)
	le.mustLH("doctor")
}

// TestCopiedDataDir: a copy of a data dir whose original is still there is
// refused with the command that makes it a catalog of its own; adopted, it
// reads the copied tables and writes only into its own warehouse.
func TestCopiedDataDir(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	const sql = "SELECT count(*) AS n FROM sales.transactions"
	rows := le.count(sql)
	orig := le.dataDir
	before := le.warehouseFiles()
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", orig, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	le.moveTo(cp)
	_, errOut, code := le.lh("query", sql)
	if code != errdefs.ExitConflict || !strings.Contains(errOut, "is a copy of "+orig) ||
		!strings.Contains(errOut, "lakehouse --data-dir "+cp+" doctor --adopt-copy") {
		t.Fatalf("query on the copy: exit %d: %s", code, errOut)
	}
	le.mustLH("doctor", "--adopt-copy")
	if got := le.count(sql); got != rows {
		t.Fatalf("copy after adopting: %q, want %q", got, rows)
	}
	le.mustLH("table", "import", "sales.transactions", "--from", testdataDir(t, "sample", "transactions_more"))
	if got := le.count(sql); got == rows {
		t.Fatalf("the import into the copy added nothing: %q", got)
	}
	le.moveTo(orig)
	if after := le.warehouseFiles(); !reflect.DeepEqual(after, before) {
		t.Fatalf("the copy wrote into the original's warehouse: %d files before, %d after", len(before), len(after))
	}
	if got := le.count(sql); got != rows {
		t.Fatalf("original after the copy's import: %q, want %q", got, rows)
	}
	le.mustLH("doctor")
}
