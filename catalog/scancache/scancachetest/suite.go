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
