package scancache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/scancache/internal/pqtest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// materializeAt materializes key and sets its last use to at.
func materializeAt(t *testing.T, c *Cache, src Source, key string, at time.Time, release bool) string {
	t.Helper()
	local, _, err := c.Materialize(context.Background(), src, key, []string{"name", "price"})
	if err != nil {
		t.Fatal(err)
	}
	id := entryID(key, mustETag(t, src, key))
	os.Chtimes(c.path(id, extSidecar), at, at)
	if release {
		c.Release(local)
	}
	return id
}

func mustETag(t *testing.T, src Source, key string) string {
	t.Helper()
	_, etag, err := src.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return etag
}

func ids(es []Entry) map[string]bool {
	m := map[string]bool{}
	for _, e := range es {
		m[e.ID] = true
	}
	return m
}

// TestSizeBound: the cache evicts the least recently used entries to stay
// within its bound, and never an entry in use (here or in another Cache).
func TestSizeBound(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	for i := range 5 {
		writeArrowParquet(t, filepath.Join(src.dir, fmt.Sprintf("f%d.parquet", i)), 4000, 2000, uint64(20+i))
	}
	// One entry's size, measured.
	probe := openCache(t, 0)
	materializeAt(t, probe, src, "f0.parquet", time.Now(), true)
	es, err := probe.List()
	if err != nil {
		t.Fatal(err)
	}
	one := es[0].Weight()

	dir := t.TempDir()
	c, err := Open(dir, 2*one+one/2) // room for two entries
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	other, err := Open(dir, 2*one+one/2)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	t0 := time.Now().Add(-time.Hour)
	pinned := materializeAt(t, other, src, "f0.parquet", t0, false) // oldest, but in use
	a := materializeAt(t, c, src, "f1.parquet", t0.Add(time.Minute), true)
	b := materializeAt(t, c, src, "f2.parquet", t0.Add(2*time.Minute), true)
	d := materializeAt(t, c, src, "f3.parquet", t0.Add(3*time.Minute), true)
	es, err = c.List()
	if err != nil {
		t.Fatal(err)
	}
	got := ids(es)
	if !got[pinned] || got[a] || got[b] || !got[d] {
		t.Errorf("after filling: entries %v; want the pinned one and the newest (%s, %s)", got, pinned, d)
	}
	other.Release(filepath.Join(dir, pinned+extData))
	e := materializeAt(t, c, src, "f4.parquet", time.Now(), true)
	es, _ = c.List()
	got = ids(es)
	if got[pinned] || !got[d] || !got[e] {
		t.Errorf("after release: entries %v; want %s and %s", got, d, e)
	}
	var sum int64
	for _, e := range es {
		sum += e.Weight()
	}
	if sum > c.maxBytes {
		t.Errorf("cache holds %d bytes, bound %d", sum, c.maxBytes)
	}
}

// TestClear removes every entry not in use and reports those in use.
func TestClear(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	writeArrowParquet(t, filepath.Join(src.dir, "a.parquet"), 1000, 1000, 30)
	writeArrowParquet(t, filepath.Join(src.dir, "b.parquet"), 1000, 1000, 31)
	dir := t.TempDir()
	c, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	user, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	materializeAt(t, c, src, "a.parquet", time.Now(), true)
	inUse := materializeAt(t, user, src, "b.parquet", time.Now(), false)
	removed, busy, err := c.Clear(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Key != "a.parquet" || len(busy) != 1 || busy[0].ID != inUse {
		t.Errorf("removed %v, busy %v", removed, busy)
	}
	user.Close()
	removed, busy, err = c.Clear(context.Background())
	if err != nil || len(removed) != 1 || len(busy) != 0 {
		t.Errorf("after release: removed %v, busy %v, %v", removed, busy, err)
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if de.Name() != "evict.lock" {
			t.Errorf("left after clear: %s", de.Name())
		}
	}
}

func TestOpenBadSize(t *testing.T) {
	t.Parallel()
	if _, err := Open(t.TempDir(), -1); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Open(-1): %v, want invalid argument", err)
	}
}

// TestEvictionUnderLoad: goroutines with their own Caches scan random
// objects and columns through a cache that holds about one entry, so
// entries are evicted all the time; every scan still reads its object's
// values (no entry is removed while in use).
func TestEvictionUnderLoad(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	const objects = 3
	cols := []string{"name", "price", "note"}
	want := map[string]string{}
	for i := range objects {
		key := fmt.Sprintf("f%d.parquet", i)
		full := filepath.Join(src.dir, key)
		writeArrowParquet(t, full, 3000, 1000, uint64(40+i))
		for _, col := range cols {
			want[key+col] = pqtest.Query(t, full, sumSQL(col))
		}
	}
	probe := openCache(t, 0)
	materializeAt(t, probe, src, "f0.parquet", time.Now(), true)
	es, _ := probe.List()
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 4 {
		c, err := Open(dir, es[0].Weight()+es[0].Weight()/2)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			for range 5 {
				key, col := fmt.Sprintf("f%d.parquet", rng.IntN(objects)), cols[rng.IntN(len(cols))]
				local, _, err := c.Materialize(context.Background(), src, key, []string{col})
				if err != nil {
					errs <- err
					return
				}
				time.Sleep(5 * time.Millisecond) // let others evict meanwhile
				if got := pqtest.Query(t, local, sumSQL(col)); got != want[key+col] {
					errs <- fmt.Errorf("%s %s: read %q, want %q", key, col, got, want[key+col])
				}
				c.Release(local)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func sumSQL(col string) string { return "SELECT count(*), sum(hash(" + col + ")) FROM $F" }
