package iceberg

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
)

// countingStorage counts the bytes read by range from the data files of
// the storage.
type countingStorage struct {
	warehouse.Storage
	bytes atomic.Int64
}

func (s *countingStorage) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Storage.ReadRange(ctx, key, off, n)
	if err != nil || !strings.Contains(key, "/data/") {
		return rc, err
	}
	return countingReadCloser{rc, &s.bytes}, nil
}

type countingReadCloser struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestS3PruneRowGroups: on MinIO, a query's filter on a column whose row
// groups hold disjoint ranges fetches only the row groups it can match;
// a plan-only scan (EXPLAIN) fetches at most the footer.
func TestS3PruneRowGroups(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	st := &countingStorage{Storage: s3Storage(t, srv, "prune")}
	cache, err := scancache.Open(filepath.Join(t.TempDir(), "scan"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	f, err := New(Options{Storage: st, Fetcher: &CacheFetcher{Cache: cache, Source: st}, BatchRows: 1000, rowGroupRows: 10000})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Sources: []string{csvRows(t, t.TempDir(), "a.csv", 0, 200000)}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.OpenScan(ctx, salesIdent, out.Entry)
	if err != nil {
		t.Fatal(err)
	}
	plan := func(ctx context.Context, filter [][]catalog.Predicate) *catalog.ScanPlan {
		t.Helper()
		st.bytes.Store(0)
		p, err := s.PlanFiles(ctx, catalog.ScanOptions{Columns: []string{"id", "usd"}, Filter: filter})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	id := func(op string, vs ...string) catalog.Predicate {
		p := catalog.Predicate{Column: "id", Op: op}
		for _, v := range vs {
			p.Values = append(p.Values, catalog.Literal{Type: "INTEGER", Text: v})
		}
		return p
	}
	selective := [][]catalog.Predicate{{id("between", "150000", "150999")}}

	// The scans below run as one query, whose context ends after them.
	query, endQuery := context.WithCancel(ctx)
	explain := plan(PlanOnly(query), selective)
	footers := st.bytes.Load()
	t.Logf("explain: %s; read %d bytes", explain.Cache, footers)
	es, err := cache.List()
	if err != nil || len(es) != 1 {
		t.Fatalf("cache entries after explain: %+v %v", es, err)
	}
	rc, err := st.Storage.ReadRange(ctx, es[0].Key, es[0].Size-8, 8)
	if err != nil {
		t.Fatal(err)
	}
	last8, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(last8) != 8 {
		t.Fatalf("reading the object's end: %v", err)
	}
	footer := int64(binary.LittleEndian.Uint32(last8)) + 8
	if !strings.Contains(explain.Cache, "would fetch") || footers != footer {
		t.Errorf("explain read %d bytes (%s); the footer is %d bytes", footers, explain.Cache, footer)
	}
	sel := plan(query, selective)
	selBytes := st.bytes.Load()
	t.Logf("selective: %s", sel.Cache)
	if !strings.Contains(sel.Cache, "row groups pruned") {
		t.Fatalf("the selective scan pruned no row group: %s", sel.Cache)
	}
	whole := plan(query, nil)
	t.Logf("whole columns: %s", whole.Cache)
	wholeBytes := st.bytes.Load() + selBytes // both scans together fetched the columns once
	t.Logf("selective filter fetched %d bytes; the two columns are %d bytes", selBytes, wholeBytes)
	if selBytes*4 > wholeBytes {
		t.Errorf("the selective scan fetched %d of %d bytes", selBytes, wholeBytes)
	}

	// The entry stays in use, and the pruned file with it, until the
	// query's context ends.
	if _, busy, err := cache.Clear(ctx); err != nil || len(busy) != 1 {
		t.Fatalf("clear during a query: %d in use, %v", len(busy), err)
	}
	if _, err := os.Stat(sel.Files[0]); err != nil {
		t.Fatalf("the pruned file during the query: %v", err)
	}
	endQuery()
	deadline := time.Now().Add(5 * time.Second)
	for {
		removed, busy, err := cache.Clear(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(removed) == 1 && len(busy) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the query: %d entries still in use", len(busy))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(sel.Files[0]); !os.IsNotExist(err) {
		t.Errorf("the pruned file after the query: %v", err)
	}
}
