package catalog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
	"github.com/lakehouse-dev/lakehouse/internal/warehousetest"
)

// TestIcebergWorkflow runs the catalog on its real parts — bbolt on disk and
// Iceberg tables written by iceberg-go — through the branch, import, merge,
// revert and time-travel flow a user goes through, on a local warehouse
// and on S3 (MinIO).
func TestIcebergWorkflow(t *testing.T) { eachWarehouse(t, icebergWorkflow) }

// eachWarehouse runs fn on a fresh catalog in dir over a local warehouse,
// then over one on S3 (MinIO).
func eachWarehouse(t *testing.T, fn func(t *testing.T, dir string, svc *catalog.Local)) {
	eachWarehouseFormat(t, func(t *testing.T, dir string, svc *catalog.Local, _ *iceberg.Format) { fn(t, dir, svc) })
}

// eachWarehouseFormat is eachWarehouse that also hands fn the catalog's
// format.
func eachWarehouseFormat(t *testing.T, fn func(t *testing.T, dir string, svc *catalog.Local, format *iceberg.Format)) {
	srv := miniotest.Start(t)
	for _, wh := range []string{"local", "s3"} {
		t.Run(wh, func(t *testing.T) {
			dir := t.TempDir()
			var st warehouse.Storage
			if wh == "s3" {
				st = warehousetest.OnS3(t, srv)
			}
			svc, format, err := openCatalog(dir, st)
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			fn(t, dir, svc, format)
		})
	}
}

func icebergWorkflow(t *testing.T, dir string, svc *catalog.Local) {
	ctx := context.Background()
	csv := func(name string, from, n int, header string) string {
		var b strings.Builder
		b.WriteString(header + "\n")
		for i := from; i < from+n; i++ {
			fmt.Fprintf(&b, "%d,%d.25,%s\n", i, i%7, []string{"IT", "FR"}[i%2])
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const header = "id,usd,country"
	f1, f2, f3 := csv("f1.csv", 0, 10, header), csv("f2.csv", 100, 20, header), csv("f3.csv", 200, 30, header)
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("id,usd,country,extra\n1,2.5,IT,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tbl := catalog.TableIdent{Namespace: "sales", Name: "tx"}
	rows := func(ref string) int64 {
		t.Helper()
		r, err := catalog.ParseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		info, err := svc.GetTable(ctx, r, tbl)
		if err != nil {
			t.Fatalf("table at %s: %v", ref, err)
		}
		return info.RowCount
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(svc.CreateBranch(ctx, "alice.a", catalog.Ref{Name: "main"}))
	must(svc.CreateNamespace(ctx, "alice.a", "sales", catalog.CommitOptions{}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: "alice.a", Table: tbl, Sources: []string{f1}}))
	must(svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: "alice.a"}, Into: "main"}))
	must(svc.CreateTag(ctx, "v1", catalog.Ref{Name: "main"}))
	must(svc.CreateBranch(ctx, "bob.b", catalog.Ref{Name: "main"}))

	// Both sides append to the same table: the merge combines their files.
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: "alice.a", Table: tbl, Sources: []string{f2}}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: "bob.b", Table: tbl, Sources: []string{f3}}))
	res, err := svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: "alice.a"}, Into: "bob.b"})
	if err != nil {
		t.Fatalf("merging two append-only sides: %v", err)
	}
	if res.Outcome != "merge" || len(res.Combined) != 1 || len(res.Commit.Parents) != 2 {
		t.Fatalf("merge result %+v", res)
	}
	if got := rows("bob.b"); got != 60 {
		t.Fatalf("bob.b has %d rows after the combined merge, want 60", got)
	}
	// Re-importing f3 is skipped; the combined table knows f2 was imported too.
	ir, err := svc.ImportTable(ctx, catalog.ImportRequest{Branch: "bob.b", Table: tbl, Sources: []string{f2, f3}})
	if err != nil || len(ir.Skipped) != 2 || ir.Commit != nil {
		t.Fatalf("re-import: %+v, %v", ir, err)
	}

	// A file whose schema conflicts fails the whole import; nothing changes.
	before, _ := svc.GetBranch(ctx, "bob.b")
	_, err = svc.ImportTable(ctx, catalog.ImportRequest{Branch: "bob.b", Table: tbl, Sources: []string{f1, bad}})
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "bad.csv") || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("conflicting import: %v", err)
	}
	if after, _ := svc.GetBranch(ctx, "bob.b"); after.Head != before.Head {
		t.Fatal("a failed import moved the branch")
	}

	// Time travel and revert.
	if got := rows("v1"); got != 10 {
		t.Fatalf("v1 has %d rows, want 10", got)
	}
	if got := rows("bob.b@" + string(before.Head[:10])); got != 60 {
		t.Fatalf("bob.b@head has %d rows", got)
	}
	must(svc.RevertTable(ctx, "bob.b", tbl, catalog.Ref{Name: "v1"}, catalog.CommitOptions{}))
	if got := rows("bob.b"); got != 10 {
		t.Fatalf("after revert to v1, %d rows", got)
	}
	d, err := svc.Diff(ctx, catalog.Ref{Name: "v1"}, catalog.Ref{Name: "alice.a"}, catalog.DiffOptions{Schema: true})
	if err != nil || len(d.Tables) != 1 || d.Tables[0].Change != "changed" {
		t.Fatalf("diff v1..alice.a: %+v, %v", d, err)
	}
	// Both sides replacing: a real conflict, listed by table.
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: "alice.a", Table: tbl, Sources: []string{f1}, Mode: catalog.ImportReplace}))
	_, err = svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: "alice.a"}, Into: "bob.b"})
	var mc *catalog.MergeConflictError
	if !errdefs.Is(err, errdefs.ErrConflict) || !errorsAs(err, &mc) || mc.Conflicts[0].Name != "sales.tx" {
		t.Fatalf("conflicting merge: %v", err)
	}
}
