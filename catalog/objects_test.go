package catalog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
)

// TestGCEachWarehouse: gc over the warehouse's own listing, on a local
// warehouse and on S3, where files get their modification time from the
// store: an orphan younger than the grace period stays; past it, it goes,
// with the states that only expired history held, while the files of a
// state shared by a rename and a revert, and of a table dropped on one
// branch but alive on another, stay. A data file deleted behind the
// catalog's back is then reported by doctor and by gc, and gc deletes
// nothing more.
func TestGCEachWarehouse(t *testing.T) { eachWarehouseFormat(t, gcOnWarehouse) }

func gcOnWarehouse(t *testing.T, dir string, svc *catalog.Local, format *iceberg.Format) {
	ctx := context.Background()
	st := format.Storage()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	csv := func(from, rows int) string {
		n++
		var b strings.Builder
		b.WriteString("id,v\n")
		for i := from; i < from+rows; i++ {
			fmt.Fprintf(&b, "%d,v%d\n", i, i)
		}
		p := filepath.Join(dir, fmt.Sprintf("f%d.csv", n))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tbl := func(name string) catalog.TableIdent { return catalog.TableIdent{Namespace: "sales", Name: name} }
	rows := func(ref string, name string) int64 {
		t.Helper()
		info, err := svc.GetTable(ctx, catalog.Ref{Name: ref}, tbl(name))
		if err != nil {
			t.Fatalf("%s at %s: %v", name, ref, err)
		}
		return info.RowCount
	}
	keys := func() []string {
		t.Helper()
		var out []string
		must(nil, st.List(ctx, "", func(o warehouse.ObjectInfo) error { out = append(out, o.Key); return nil }))
		return out
	}
	doctor := func() []catalog.Problem {
		t.Helper()
		r, err := svc.Doctor(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r.Problems
	}

	must(svc.CreateBranch(ctx, "dev", catalog.Ref{Name: "main"}))
	must(svc.CreateNamespace(ctx, "dev", "sales", catalog.CommitOptions{}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: "dev", Table: tbl("a"), Sources: []string{csv(0, 10)}}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: "dev", Table: tbl("a"), Sources: []string{csv(10, 5)}}))
	// Rename a to b, take b onto other by revert, drop it on dev.
	entry, _, err := svc.TableEntry(ctx, catalog.Ref{Name: "dev"}, tbl("a"))
	must(nil, err)
	must(svc.CommitTables(ctx, "dev", "", catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{
		tbl("a"): nil, tbl("b"): &entry}}, catalog.CommitOptions{Message: "rename a to b"}))
	must(svc.CreateBranch(ctx, "other", catalog.Ref{Name: "main"}))
	must(svc.CreateNamespace(ctx, "other", "sales", catalog.CommitOptions{}))
	must(svc.RevertTable(ctx, "other", tbl("b"), catalog.Ref{Name: "dev"}, catalog.CommitOptions{}))
	must(svc.DeleteTable(ctx, "dev", tbl("b"), catalog.CommitOptions{}))
	// A killed import's file.
	const orphan = "sales/killed-import/data/x.parquet"
	w, err := st.Create(ctx, orphan)
	must(nil, err)
	must(w.Write([]byte("half a file")))
	must(nil, w.Close())

	gc := func(opts catalog.GCOptions) *catalog.GCResult {
		t.Helper()
		opts.Objects, opts.Tables = format.Objects(), format
		res, err := svc.GC(ctx, opts)
		if err != nil {
			t.Fatalf("gc: %v", err)
		}
		return res
	}
	before := keys()
	if res := gc(catalog.GCOptions{Grace: time.Hour}); len(res.Deleted) != 0 || res.Recent == 0 {
		t.Fatalf("gc within the grace period deleted %v, kept %d recent files", res.Deleted, res.Recent)
	}
	later := time.Now().Add(72 * time.Hour)
	res := gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 24 * time.Hour, Now: func() time.Time { return later }})
	deleted := make([]string, len(res.Deleted))
	for i, f := range res.Deleted {
		deleted[i] = f.Key
	}
	if !slices.Contains(deleted, orphan) || len(deleted) < 2 {
		t.Fatalf("gc past grace and retention deleted %v; want the orphan and the first import's state", deleted)
	}
	after := keys()
	for _, k := range deleted {
		if slices.Contains(after, k) {
			t.Errorf("gc reported %s deleted, but it is still listed", k)
		}
	}
	if len(after)+len(deleted) != len(before) {
		t.Errorf("%d files before gc, %d after, %d deleted", len(before), len(after), len(deleted))
	}
	if got := rows("other", "b"); got != 15 {
		t.Fatalf("b at other has %d rows after gc, want 15", got)
	}
	if p := doctor(); len(p) != 0 {
		t.Fatalf("doctor after gc: %+v", p)
	}

	// An object deleted behind the catalog's back.
	var gone string
	for _, k := range after {
		if strings.Contains(k, "/data/") {
			gone = k
		}
	}
	if gone == "" {
		t.Fatalf("no data file left: %v", after)
	}
	must(nil, st.Delete(ctx, gone))
	if p := doctor(); len(p) != 1 || !strings.Contains(p[0].What, gone+" is missing") {
		t.Fatalf("doctor after deleting %s: %+v", gone, p)
	}
	res = gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 24 * time.Hour, Now: func() time.Time { return later }})
	if len(res.Deleted) != 0 || !slices.Equal(res.Missing, []string{gone}) {
		t.Fatalf("gc after deleting %s deleted %v, found %v missing", gone, res.Deleted, res.Missing)
	}
}
