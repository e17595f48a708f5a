package scancache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache/internal/pqtest"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// idRange keeps the row groups whose id statistics overlap [lo, hi].
func idRange(lo, hi int64) func(md *metadata.FileMetaData) []bool {
	return func(md *metadata.FileMetaData) []bool {
		keep := make([]bool, md.NumRowGroups())
		for i := range keep {
			keep[i] = true
			cc, err := md.RowGroup(i).ColumnChunk(0)
			if err != nil {
				continue
			}
			st, err := cc.Statistics()
			if s, ok := st.(*metadata.Int64Statistics); ok && err == nil && s.HasMinMax() {
				keep[i] = s.Max() >= lo && s.Min() <= hi
			}
		}
		return keep
	}
}

// poisonRowGroups overwrites the chunks of the row groups keep rules out
// with 0xA5 in the file at path, laid out as the object full.
func poisonRowGroups(t *testing.T, full, path string, keep []bool) {
	t.Helper()
	r, err := file.OpenParquetFile(full, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md := r.MetaData()
	for rg := range md.NumRowGroups() {
		if keep[rg] {
			continue
		}
		for col := range md.NumColumns() {
			cc, _ := md.RowGroup(rg).ColumnChunk(col)
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < start {
				start = cc.DictionaryPageOffset()
			}
			b := []byte(strings.Repeat("\xa5", int(cc.TotalCompressedSize())))
			if _, err := f.WriteAt(b, start); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPruneRowGroups: a scan whose filter rules out all but one of 20 row
// groups fetches that row group's chunks only; its file lists only that
// row group, so DuckDB reads the same rows as from the whole object
// without touching a pruned row group's bytes (they are garbage here).
// The entry's shared file, whose footer still lists every row group, is
// not safe to read that way: DuckDB prunes by statistics only the filters
// it pushes into the scan.
func TestPruneRowGroups(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	full := filepath.Join(src.dir, "t.parquet")
	pqtest.WriteDuck(t, full, 200000, 10000, 3)
	c := openCache(t, 0)
	ctx := context.Background()
	cols := []string{"id", "note", "price"}
	scan := Scan{Columns: cols, RowGroups: idRange(25000, 25999)}
	local, st, err := c.MaterializeScan(ctx, src, "t.parquet", scan)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(local)
	if st.RowGroups != 20 || st.RowGroupsPruned != 19 {
		t.Fatalf("stats %+v, want 19 of 20 row groups pruned", st)
	}
	var whole int64
	for _, col := range cols {
		whole += pqtest.ColumnBytes(t, full, col)
	}
	if st.BytesFetched > 2*whole/20+tailSize {
		t.Errorf("fetched %d bytes; the columns are %d bytes, one row group about %d", st.BytesFetched, whole, whole/20)
	}
	t.Logf("selective filter fetched %d bytes in %d requests; the whole columns are %d bytes", st.BytesFetched, st.Requests, whole)
	if !strings.Contains(st.String(), "19 of 20 row groups pruned") {
		t.Errorf("stats line %q does not say what was pruned", st)
	}

	md := mustFooter(t, full)
	keep := idRange(25000, 25999)(md)
	poisonRowGroups(t, full, local, keep)
	// The last query's filter is one DuckDB does not push into the scan
	// (an OR across columns; no note is 'x'): it reads every row group
	// its footer lists.
	crossOr := "SELECT count(note), sum(price) FROM $F WHERE id BETWEEN 25000 AND 25999 OR note = 'x'"
	for _, q := range []string{
		"SELECT id, note, price FROM $F WHERE id BETWEEN 25000 AND 25999 ORDER BY id",
		"SELECT count(*), sum(price) FROM $F WHERE id >= 25000 AND id <= 25999 AND note IS NOT NULL",
		crossOr,
	} {
		if want, got := pqtest.Query(t, full, q), pqtest.Query(t, local, q); got != want {
			t.Errorf("%s: pruned file gives\n%.300s\nwant\n%.300s", q, got, want)
		}
	}
	// The pruned file has the kept row group only, whatever the query.
	var rows int64
	for i, k := range keep {
		if k {
			rows += md.RowGroup(i).NumRows()
		}
	}
	if got, want := pqtest.Query(t, local, "SELECT count(*) FROM $F"), fmt.Sprintln(rows); got != want {
		t.Errorf("rows in the pruned file: %q, want %q", got, want)
	}
	// The same scan again is a hit; without a filter the entry's shared
	// file is used and the other row groups are fetched.
	again, st, err := c.MaterializeScan(ctx, src, "t.parquet", scan)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Hit || again == local {
		t.Errorf("the same pruned scan again: %+v at %s, want a hit in a file of its own", st, again)
	}
	c.Release(again)
	if _, err := os.Stat(again); !os.IsNotExist(err) {
		t.Errorf("Release left the pruned file: %v", err)
	}
	shared, st, err := c.Materialize(ctx, src, "t.parquet", []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(shared)
	if st.Hit || st.RowGroupsPruned != 0 || filepath.Dir(shared) != c.Dir() {
		t.Errorf("unfiltered scan: %+v at %s, want a miss on the shared file", st, shared)
	}
	// A filter no row group can match leaves a file of no rows.
	none, st, err := c.MaterializeScan(ctx, src, "t.parquet", Scan{Columns: cols, RowGroups: idRange(-10, -1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(none)
	if got := pqtest.Query(t, none, "SELECT count(*), sum(price) FROM $F"); st.RowGroupsPruned != 20 || got != "0|(null)\n" {
		t.Errorf("all row groups pruned: %+v, query gives %q", st, got)
	}
	// The shared file, its pruned row groups garbage: DuckDB fails on
	// the cross-column OR, which is why pruned scans get a footer of
	// their own.
	sharedPath := c.path(strings.TrimSuffix(filepath.Base(filepath.Dir(local)), extVariants), extData)
	poisonRowGroups(t, full, sharedPath, keep)
	if err := queryErr(sharedPath, crossOr); err == nil {
		t.Error("DuckDB read the shared file's garbage row groups without an error; the test no longer shows the hazard")
	}
}

// queryErr is the error of sql ($F the file at path) in DuckDB.
func queryErr(path, sql string) error {
	db, err := duckdb.Open(duckdb.Options{Threads: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := db.Query(context.Background(), strings.ReplaceAll(sql, "$F", "read_parquet("+duckdb.Literal(path)+")"))
	if err != nil {
		return err
	}
	defer r.Release()
	for r.Next() {
	}
	return r.Err()
}

func mustFooter(t *testing.T, path string) *metadata.FileMetaData {
	t.Helper()
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.MetaData()
}

// TestPlanOnly: a plan-only scan fetches the footer and nothing else, and
// says what the scan would fetch; the scan then fetches exactly that.
func TestPlanOnly(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	full := filepath.Join(src.dir, "t.parquet")
	pqtest.WriteDuck(t, full, 100000, 10000, 4)
	c := openCache(t, 0)
	ctx := context.Background()
	scan := Scan{Columns: []string{"id", "name"}, RowGroups: idRange(0, 29999), PlanOnly: true}
	_, plan, err := c.MaterializeScan(ctx, src, "t.parquet", scan)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(full)
	if plan.Hit || !plan.PlanOnly || plan.BytesFetched > min(fi.Size(), tailSize) || plan.BytesToFetch == 0 || plan.RowGroupsPruned != 7 {
		t.Errorf("plan: %+v, want the footer fetched and 7 row groups pruned", plan)
	}
	if !strings.Contains(plan.String(), "miss, would fetch ") {
		t.Errorf("plan line %q", plan)
	}
	if es, _ := c.List(); len(es) != 1 || c.pinned(es[0].ID) {
		t.Errorf("after a plan: entries %+v, want one not in use", es)
	}
	scan.PlanOnly = false
	local, st, err := c.MaterializeScan(ctx, src, "t.parquet", scan)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(local)
	if st.BytesFetched != plan.BytesToFetch || st.Requests != plan.RequestsToFetch {
		t.Errorf("the scan fetched %d bytes in %d requests; the plan said %d in %d", st.BytesFetched, st.Requests, plan.BytesToFetch, plan.RequestsToFetch)
	}
	scan.PlanOnly = true
	if _, again, err := c.MaterializeScan(ctx, src, "t.parquet", scan); err != nil || !again.Hit || again.BytesFetched != 0 {
		t.Errorf("a plan of a cached scan: %+v %v, want a hit", again, err)
	}
}
