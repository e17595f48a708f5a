package iceberg

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/lakehouse-dev/lakehouse/catalog"
)

// TestPlanFiles: partition values and column statistics prune data files;
// no filter keeps them all; an empty table plans no files.
func TestPlanFiles(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	src := writeFile(t, dir, "tx.csv", "id,country,usd\n1,IT,1.5\n2,IT,2.5\n3,FR,10\n4,DE,20\n5,DE,30\n")
	out := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}, PartitionBy: []string{"country"}})
	ctx := context.Background()
	tbl, err := f.openScan(ctx, salesIdent, out.Entry)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.SnapshotID() != out.Entry.SnapshotID || tbl.SchemaCount() != 1 || len(tbl.Schema().Fields()) != 3 {
		t.Fatalf("snapshot %d (want %d), %d schemas, %d fields", tbl.SnapshotID(), out.Entry.SnapshotID, tbl.SchemaCount(), len(tbl.Schema().Fields()))
	}
	cases := []struct {
		name   string
		filter iceberg.BooleanExpression
		files  int
		rows   int64
	}{
		{"all", nil, 3, 5},
		{"partition", iceberg.EqualTo(iceberg.Reference("country"), "DE"), 1, 2},
		{"partition in", iceberg.IsIn(iceberg.Reference("country"), "DE", "IT"), 2, 4},
		{"stats", iceberg.GreaterThan(iceberg.Reference("usd"), 15.0), 1, 2},
		{"case-insensitive", iceberg.EqualTo(iceberg.Reference("COUNTRY"), "FR"), 1, 1},
		{"nothing", iceberg.EqualTo(iceberg.Reference("country"), "US"), 0, 0},
	}
	for _, c := range cases {
		plan, err := tbl.PlanFiles(ctx, ScanOptions{Filter: c.filter})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(plan.Files) != c.files || plan.Records != c.rows || plan.TotalFiles != 3 {
			t.Errorf("%s: %d files / %d rows of %d files, want %d / %d of 3", c.name, len(plan.Files), plan.Records, plan.TotalFiles, c.files, c.rows)
		}
		for _, p := range plan.Files {
			if strings.HasPrefix(p, "file:") || !strings.HasSuffix(p, ".parquet") {
				t.Errorf("%s: file %q is not a local Parquet path", c.name, p)
			}
		}
	}
	if _, err := tbl.PlanFiles(ctx, ScanOptions{Filter: iceberg.EqualTo(iceberg.Reference("nosuch"), "x")}); err == nil {
		t.Error("a filter on a missing column planned")
	}
}

func TestOpenScanMissingMetadata(t *testing.T) {
	t.Parallel()
	_, err := OpenScan(context.Background(), salesIdent, catalog.TableEntry{MetadataLocation: "/nonexistent/v1.metadata.json"})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err %v", err)
	}
}
