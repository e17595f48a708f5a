// Package scancachetest is the conformance suite of a scancache.Source: run
// it against every warehouse storage (local directory, S3) to check that
// the scan cache works over it.
package scancachetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache/internal/pqtest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Store is a Source the suite can write objects to.
type Store interface {
	scancache.Source
	// Put writes (or replaces) the object at key.
	Put(ctx context.Context, key string, data []byte) error
}

// Run runs the suite. newStore returns an empty store (or one under a
// fresh prefix) for each test.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	t.Run("MatchesFullFile", func(t *testing.T) { testMatches(t, newStore(t)) })
	t.Run("AddColumn", func(t *testing.T) { testAddColumn(t, newStore(t)) })
	t.Run("ReplacedObject", func(t *testing.T) { testReplaced(t, newStore(t)) })
	t.Run("ConcurrentFetchOnce", func(t *testing.T) { testConcurrent(t, newStore(t)) })
	t.Run("BadObjects", func(t *testing.T) { testBad(t, newStore(t)) })
	t.Run("TruncatedCacheFile", func(t *testing.T) { testTruncated(t, newStore(t)) })
	t.Run("SizeBound", func(t *testing.T) { testSizeBound(t, newStore(t)) })
	t.Run("PrunedRowGroups", func(t *testing.T) { testPruned(t, newStore(t)) })
}

// Parquet returns a file written by DuckDB of rows rows in row groups of
// rowGroup rows (see pqtest.WriteDuck); seed varies its values.
func Parquet(t testing.TB, rows, rowGroup, seed int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.parquet")
	pqtest.WriteDuck(t, path, rows, rowGroup, seed)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// put stores data at key and returns a local copy of it for comparison.
func put(t *testing.T, st Store, key string, data []byte) string {
	t.Helper()
	if err := st.Put(context.Background(), key, data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "full.parquet")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func openCache(t *testing.T, dir string) *scancache.Cache {
	t.Helper()
	c, err := scancache.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func materialize(t *testing.T, c *scancache.Cache, st Store, key string, cols []string) (string, scancache.FetchStats) {
	t.Helper()
	local, stats, err := c.Materialize(context.Background(), st, key, cols)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Release(local) })
	return local, stats
}

func testMatches(t *testing.T, st Store) {
	full := put(t, st, "data/a.parquet", Parquet(t, 30000, 8192, 1))
	for _, cols := range [][]string{{"price"}, {"name", "note"}, {"nums", "s", "day"}} {
		c := openCache(t, t.TempDir())
		local, stats := materialize(t, c, st, "data/a.parquet", cols)
		if stats.Hit || stats.BytesFetched == 0 {
			t.Errorf("%v: first use %v, want a miss", cols, stats)
		}
		if q := pqtest.Scan(cols); pqtest.Query(t, local, q) != pqtest.Query(t, full, q) {
			t.Errorf("%v: the materialized file differs from the object", cols)
		}
	}
}

func testAddColumn(t *testing.T, st Store) {
	full := put(t, st, "data/b.parquet", Parquet(t, 200000, 50000, 2))
	c := openCache(t, t.TempDir())
	materialize(t, c, st, "data/b.parquet", []string{"id", "name"})
	local, stats := materialize(t, c, st, "data/b.parquet", []string{"id", "name", "note"})
	col := pqtest.ColumnBytes(t, full, "note")
	if stats.BytesFetched > col+col/20 {
		t.Errorf("adding note fetched %d bytes; its chunks are %d bytes", stats.BytesFetched, col)
	}
	if q := pqtest.Scan([]string{"id", "name", "note"}); pqtest.Query(t, local, q) != pqtest.Query(t, full, q) {
		t.Error("the materialized file differs from the object")
	}
	if _, stats = materialize(t, c, st, "data/b.parquet", []string{"note"}); !stats.Hit {
		t.Errorf("a cached column: %v, want a hit", stats)
	}
}

func testReplaced(t *testing.T, st Store) {
	put(t, st, "data/c.parquet", Parquet(t, 5000, 2000, 3))
	c := openCache(t, t.TempDir())
	old, _ := materialize(t, c, st, "data/c.parquet", []string{"name"})
	full := put(t, st, "data/c.parquet", Parquet(t, 5000, 2000, 4))
	local, stats := materialize(t, c, st, "data/c.parquet", []string{"name"})
	if local == old || stats.Hit {
		t.Fatalf("the replaced object was served from the old entry (%v)", stats)
	}
	if q := pqtest.Scan([]string{"name"}); pqtest.Query(t, local, q) != pqtest.Query(t, full, q) {
		t.Error("the entry differs from the replacing object")
	}
}

func testConcurrent(t *testing.T, st Store) {
	put(t, st, "data/d.parquet", Parquet(t, 100000, 25000, 5))
	cols := []string{"note", "price"}
	_, one := materialize(t, openCache(t, t.TempDir()), st, "data/d.parquet", cols)
	dir := t.TempDir()
	const n = 4
	var wg sync.WaitGroup
	stats := make([]scancache.FetchStats, n)
	errs := make([]error, n)
	for i := range n {
		c := openCache(t, dir) // one Cache each: separate locks, as separate processes
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local string
			local, stats[i], errs[i] = c.Materialize(context.Background(), st, "data/d.parquet", cols)
			if errs[i] == nil {
				c.Release(local)
			}
		}()
	}
	wg.Wait()
	var fetched int64
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		fetched += stats[i].BytesFetched
	}
	if fetched != one.BytesFetched {
		t.Errorf("%d concurrent readers fetched %d bytes; one fetch is %d", n, fetched, one.BytesFetched)
	}
}

func testBad(t *testing.T, st Store) {
	ctx := context.Background()
	if err := st.Put(ctx, "data/e.csv", []byte(strings.Repeat("id,name\n1,a\n", 100))); err != nil {
		t.Fatal(err)
	}
	c := openCache(t, t.TempDir())
	if _, _, err := c.Materialize(ctx, st, "data/e.csv", nil); !errors.Is(err, errdefs.ErrDataLoss) || !strings.Contains(err.Error(), "data/e.csv") {
		t.Errorf("not Parquet: %v, want data loss naming the object", err)
	}
	if _, _, err := c.Materialize(ctx, st, "data/missing.parquet", nil); err == nil {
		t.Error("a missing object: no error")
	}
	if es, err := c.List(); err != nil || len(es) != 0 {
		t.Errorf("after failures the cache holds %v (%v)", es, err)
	}
}

func testTruncated(t *testing.T, st Store) {
	full := put(t, st, "data/f.parquet", Parquet(t, 30000, 8192, 6))
	cols := []string{"id", "note"}
	c := openCache(t, t.TempDir())
	local, first := materialize(t, c, st, "data/f.parquet", cols)
	fi, err := os.Stat(local)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(local, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	local, stats := materialize(t, c, st, "data/f.parquet", cols)
	if stats.Hit || stats.BytesFetched == 0 || stats.BytesFetched > first.BytesFetched {
		t.Errorf("after truncation: %v; the first fetch was %d bytes", stats, first.BytesFetched)
	}
	if q := pqtest.Scan(cols); pqtest.Query(t, local, q) != pqtest.Query(t, full, q) {
		t.Error("the refetched entry differs from the object")
	}
}

func testSizeBound(t *testing.T, st Store) {
	put(t, st, "data/g1.parquet", Parquet(t, 20000, 8192, 7))
	put(t, st, "data/g2.parquet", Parquet(t, 20000, 8192, 8))
	probe := openCache(t, t.TempDir())
	materialize(t, probe, st, "data/g1.parquet", nil)
	es, err := probe.List()
	if err != nil || len(es) != 1 {
		t.Fatalf("probe: %v %v", es, err)
	}
	bound := es[0].Weight() + es[0].Weight()/2 // room for one entry
	c, err := scancache.Open(t.TempDir(), bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, key := range []string{"data/g1.parquet", "data/g2.parquet"} {
		local, _, err := c.Materialize(context.Background(), st, key, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Release(local)
	}
	es, err = c.List()
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, e := range es {
		sum += e.Weight()
	}
	if len(es) != 1 || !strings.HasSuffix(es[0].Key, "g2.parquet") || sum > bound {
		t.Errorf("entries %+v (%d bytes, bound %d); want the newer one only", es, sum, bound)
	}
}

func testPruned(t *testing.T, st Store) {
	full := put(t, st, "data/h.parquet", Parquet(t, 100000, 10000, 9))
	c := openCache(t, t.TempDir())
	keepFirst := func(md *metadata.FileMetaData) []bool {
		keep := make([]bool, md.NumRowGroups())
		keep[0] = true
		return keep
	}
	cols := []string{"id", "name"}
	local, stats, err := c.MaterializeScan(context.Background(), st, "data/h.parquet", scancache.Scan{Columns: cols, RowGroups: keepFirst})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(local)
	whole := pqtest.ColumnBytes(t, full, "id") + pqtest.ColumnBytes(t, full, "name")
	// The first fetch reads the object's last 64 KiB with the footer.
	if stats.RowGroupsPruned == 0 || stats.BytesFetched > whole/3+64<<10 {
		t.Errorf("pruned scan: %v; the columns are %d bytes", stats, whole)
	}
	q := "SELECT id, name FROM $F WHERE id < 1000 ORDER BY id"
	if pqtest.Query(t, local, q) != pqtest.Query(t, full, q) {
		t.Error("the pruned file differs from the object in its kept row group")
	}
}
