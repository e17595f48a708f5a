package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"
)

// historyPy reads a metadata file with PyIceberg, as an outside engine
// given `table ls -O json`'s metadata_location does, and prints the row
// count at each snapshot id named on the command line as JSON.
const historyPy = `
import json, sys
from pyiceberg.table import StaticTable
t = StaticTable.from_metadata(sys.argv[1])
print(json.dumps({i: t.scan(snapshot_id=int(i)).to_arrow().num_rows for i in sys.argv[2:]}))
`

// After a three-way merge, every snapshot id `table history -r main`
// prints is in main's metadata file, and reading the table at that id
// through the file (iceberg-go, PyIceberg) gives the rows `lakehouse
// query` gives at the entry's commit, whose plan scans that same
// snapshot. The merge entry names the snapshot of the merged branch it
// replaced.
func TestTableHistoryTimeTravel(t *testing.T) {
	py := os.Getenv("PYTHON")
	if py == "" {
		py = "python3"
	}
	if err := exec.Command(py, "-c", "import pyiceberg").Run(); err != nil {
		t.Fatalf("%s cannot import pyiceberg (scripts/test.sh installs it): %v", py, err)
	}
	dataDir, src := t.TempDir(), t.TempDir()
	le := &lakehouseEnv{t: t, dataDir: dataDir, env: map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}}
	must := le.mustLH
	csv := func(name string, rows int) string {
		p := filepath.Join(src, name)
		var b strings.Builder
		b.WriteString("id\n")
		for i := range rows {
			fmt.Fprintf(&b, "%d\n", i)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	must("checkout", "-b", "tester.a")
	must("namespace", "create", "sales")
	must("table", "import", "sales.t", "--from", csv("f1.csv", 1))
	must("merge", "tester.a", "--into", "main")
	must("branch", "create", "tester.x", "--from-ref", "main")
	must("branch", "create", "tester.y", "--from-ref", "main")
	must("table", "import", "sales.t", "--from", csv("f2.csv", 2), "-b", "tester.x")
	must("merge", "tester.x", "--into", "main")
	must("table", "import", "sales.t", "--from", csv("f3.csv", 4), "-b", "tester.y")
	must("table", "import", "sales.t", "--from", csv("f4.csv", 8), "-b", "tester.y")
	must("merge", "tester.y", "--into", "main")

	type tableView struct {
		SnapshotID       int64  `json:"snapshot_id"`
		MetadataLocation string `json:"metadata_location"`
	}
	ls := func(ref string) tableView {
		t.Helper()
		var out []tableView
		if err := json.Unmarshal([]byte(must("table", "ls", "-r", ref, "-O", "json")), &out); err != nil || len(out) != 1 {
			t.Fatalf("table ls -r %s: %v %+v", ref, err, out)
		}
		return out[0]
	}
	mainTable, yTable := ls("main"), ls("tester.y")
	metadata := mainTable.MetadataLocation

	var hist []struct {
		Change             string `json:"change"`
		SnapshotID         int64  `json:"snapshot_id"`
		ReplacedSnapshotID int64  `json:"replaced_snapshot_id"`
		MetadataLocation   string `json:"metadata_location"`
		Commit             struct {
			ID      string   `json:"id"`
			Parents []string `json:"parents"`
		} `json:"commit"`
	}
	if err := json.Unmarshal([]byte(must("table", "history", "sales.t", "-r", "main", "-O", "json")), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 5 {
		t.Fatalf("%d history entries, want 5: %+v", len(hist), hist)
	}
	if m := hist[0]; len(m.Commit.Parents) != 2 || m.SnapshotID != mainTable.SnapshotID || m.ReplacedSnapshotID != yTable.SnapshotID ||
		m.MetadataLocation != metadata {
		t.Errorf("merge entry %+v: want snapshot %d replacing tester.y's %d in %s", m, mainTable.SnapshotID, yTable.SnapshotID, metadata)
	}
	text := must("table", "history", "sales.t", "-r", "main")
	if want := fmt.Sprintf("%d (replaces %d)", mainTable.SnapshotID, yTable.SnapshotID); !strings.Contains(text, want) {
		t.Errorf("text history does not say %q:\n%s", want, text)
	}

	// Rows at each printed snapshot, through lakehouse query at the
	// entry's commit.
	want := map[int64]int{}
	for _, h := range hist {
		if h.SnapshotID == 0 {
			continue
		}
		ref := "@" + h.Commit.ID
		var plan struct {
			Tables []struct {
				SnapshotID int64 `json:"snapshot_id"`
			} `json:"tables"`
		}
		if err := json.Unmarshal([]byte(must("query", "SELECT count(*) AS n FROM sales.t", "-r", ref, "--explain", "-O", "json")), &plan); err != nil ||
			len(plan.Tables) != 1 || plan.Tables[0].SnapshotID != h.SnapshotID {
			t.Errorf("query at %s scans %+v (%v), want snapshot %d", ref, plan, err, h.SnapshotID)
		}
		var rows []struct {
			N int `json:"n"`
		}
		if err := json.Unmarshal([]byte(must("query", "SELECT count(*) AS n FROM sales.t", "-r", ref, "-O", "json")), &rows); err != nil || len(rows) != 1 {
			t.Fatalf("query at %s: %v %+v", ref, err, rows)
		}
		want[h.SnapshotID] = rows[0].N
	}
	if len(want) != 3 {
		t.Fatalf("%d snapshots in main's history, want 3 (created, tester.x's append, the merge): %+v", len(want), hist)
	}

	// The same through main's metadata file, with iceberg-go.
	ctx := context.Background()
	tbl, err := icetable.NewFromLocation(ctx, icetable.Identifier{"sales", "t"}, metadata, iceio.LoadFSFunc(nil, metadata), nil)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", historyPy, metadata}
	for id, n := range want {
		at, err := tbl.Scan(icetable.WithSnapshotID(id)).ToArrowTable(ctx)
		if err != nil {
			t.Errorf("iceberg-go at snapshot %d of %s: %v", id, metadata, err)
			continue
		}
		if got := int(at.NumRows()); got != n {
			t.Errorf("iceberg-go at snapshot %d: %d rows, lakehouse query %d", id, got, n)
		}
		at.Release()
		args = append(args, strconv.FormatInt(id, 10))
	}

	// And with PyIceberg.
	out, err := exec.Command(py, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pyiceberg: %v\n%s", err, out)
	}
	var got map[string]int
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("pyiceberg output %q: %v", out, err)
	}
	for id, n := range want {
		if g, ok := got[strconv.FormatInt(id, 10)]; !ok || g != n {
			t.Errorf("pyiceberg at snapshot %d: %d rows (%v), lakehouse query %d", id, g, ok, n)
		}
	}
}
