package scancache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/scancache/internal/pqtest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// TestMaterializeMatchesFullFile: a DuckDB query of the projected columns
// over the materialized sparse file, with its holes filled with garbage,
// returns what it returns over the whole file, for files written by arrow-go
// and by DuckDB, with nested, string and decimal columns and several row
// groups.
func TestMaterializeMatchesFullFile(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	writeArrowParquet(t, filepath.Join(src.dir, "arrow.parquet"), 5000, 1200, 1)
	pqtest.WriteDuck(t, filepath.Join(src.dir, "duck.parquet"), 30000, 8192, 0)
	cases := []struct {
		name    string
		key     string
		columns []string
		extra   []string // more queries over the columns
	}{
		{"arrow/id", "arrow.parquet", []string{"id"}, []string{"SELECT count(*), sum(id) FROM $F WHERE id > 2500"}},
		{"arrow/dict-string+decimal", "arrow.parquet", []string{"name", "price"},
			[]string{"SELECT name, sum(price), count(*) FROM $F WHERE price > 0 GROUP BY name ORDER BY name"}},
		{"arrow/nested", "arrow.parquet", []string{"tags", "s", "m"},
			[]string{"SELECT count(*), sum(len(tags)), sum(s.a), count(m) FROM $F WHERE s.b IS NOT NULL"}},
		{"arrow/mixed", "arrow.parquet", []string{"big", "note", "day", "flag", "f"}, nil},
		{"arrow/all", "arrow.parquet", nil, nil},
		{"duck/decimal", "duck.parquet", []string{"price"}, []string{"SELECT sum(price) FROM $F WHERE price < 500"}},
		{"duck/strings", "duck.parquet", []string{"name", "note"},
			[]string{"SELECT name, count(note) FROM $F GROUP BY name ORDER BY name"}},
		{"duck/nested", "duck.parquet", []string{"nums", "s"}, nil},
		{"duck/wide-decimal+date", "duck.parquet", []string{"big", "day"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := openCache(t, 0)
			full := filepath.Join(src.dir, tc.key)
			local, st, err := c.Materialize(context.Background(), src, tc.key, tc.columns)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release(local)
			fi, _ := os.Stat(full)
			if st.Hit || st.BytesFetched == 0 {
				t.Errorf("first use: stats %+v, want a miss", st)
			}
			if tc.columns != nil && st.BytesFetched >= fi.Size() {
				t.Errorf("fetched %d bytes of %d for %v", st.BytesFetched, fi.Size(), tc.columns)
			}
			poison(t, c, local)
			for _, q := range append([]string{pqtest.Scan(tc.columns)}, tc.extra...) {
				want, got := pqtest.Query(t, full, q), pqtest.Query(t, local, q)
				if got != want {
					t.Errorf("%s: sparse file differs from the full file (%d vs %d bytes of output)", q, len(got), len(want))
				}
			}
		})
	}
}

// TestAddColumnFetchesOnlyIt: a scan needing one more column fetches that
// column's chunks and nothing else; the same scan again fetches nothing.
func TestAddColumnFetchesOnlyIt(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	full := filepath.Join(src.dir, "t.parquet")
	writeArrowParquet(t, full, 20000, 4000, 2)
	c := openCache(t, 0)
	ctx := context.Background()
	first, _, err := c.Materialize(ctx, src, "t.parquet", []string{"id", "name"})
	if err != nil {
		t.Fatal(err)
	}
	c.Release(first)
	local, st, err := c.Materialize(ctx, src, "t.parquet", []string{"id", "name", "note"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(local)
	if local != first {
		t.Errorf("second path %s, want %s", local, first)
	}
	col := pqtest.ColumnBytes(t, full, "note")
	if st.BytesFetched > col || st.BytesFetched < col-tailSize {
		t.Errorf("adding note fetched %d bytes; its chunks are %d bytes", st.BytesFetched, col)
	}
	if st.Requests != 5 {
		t.Errorf("adding note made %d requests, want one per row group (5)", st.Requests)
	}
	poison(t, c, local)
	q := pqtest.Scan([]string{"id", "name", "note"})
	if pqtest.Query(t, local, q) != pqtest.Query(t, full, q) {
		t.Error("sparse file differs from the full file")
	}
	_, st, err = c.Materialize(ctx, src, "t.parquet", []string{"NOTE", "id"})
	if err != nil {
		t.Fatal(err)
	}
	c.Release(local)
	if !st.Hit || st.BytesFetched != 0 || st.Requests != 0 {
		t.Errorf("a cached scan: %+v, want a hit with nothing fetched", st)
	}
	_, st, err = c.Materialize(ctx, src, "t.parquet", []string{"id", "added_later"})
	if err != nil {
		t.Fatal(err)
	}
	c.Release(local)
	if !st.Hit || len(st.MissingColumns) != 1 || st.MissingColumns[0] != "added_later" {
		t.Errorf("a column the file lacks: %+v, want a hit naming it missing", st)
	}
}

// TestRestart: a reopened cache serves what an earlier process fetched.
func TestRestart(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	writeArrowParquet(t, filepath.Join(src.dir, "t.parquet"), 3000, 1000, 3)
	dir := t.TempDir()
	for i, wantHit := range []bool{false, true} {
		c, err := Open(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, st, err := c.Materialize(context.Background(), src, "t.parquet", []string{"price"})
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.Hit != wantHit {
			t.Errorf("open %d: hit %v, want %v", i, st.Hit, wantHit)
		}
	}
}

// TestDamagedEntry: a truncated data file, flipped bytes in it, and a
// damaged or missing sidecar are detected and the lost ranges refetched.
func TestDamagedEntry(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	full := filepath.Join(src.dir, "t.parquet")
	size := writeArrowParquet(t, full, 6000, 1500, 4)
	cols := []string{"name", "s", "price"}
	q := pqtest.Scan(cols)
	want := pqtest.Query(t, full, q)
	cases := []struct {
		name   string
		damage func(t *testing.T, c *Cache, local, sidecar string)
	}{
		{"truncated", func(t *testing.T, _ *Cache, local, _ string) {
			if err := os.Truncate(local, size/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated-to-zero", func(t *testing.T, _ *Cache, local, _ string) {
			if err := os.Truncate(local, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"flipped-bytes", func(t *testing.T, _ *Cache, local, sidecar string) { flip(t, local, sidecar) }},
		{"flipped-bytes-after-stamp", func(t *testing.T, c *Cache, local, sidecar string) {
			time.Sleep(stampSettle + 50*time.Millisecond)
			l, st, err := c.Materialize(context.Background(), src, "t.parquet", cols)
			if err != nil || !st.Hit {
				t.Fatal(err, st)
			}
			c.Release(l)
			if sc, _ := loadSidecar(sidecar); sc == nil || sc.Stamp == nil {
				t.Fatal("a settled, verified entry got no stamp")
			}
			fi, _ := os.Stat(local)
			flip(t, local, sidecar)
			os.Chtimes(local, fi.ModTime(), fi.ModTime()) // hide the write from the mtime
		}},
		{"sidecar-garbage", func(t *testing.T, _ *Cache, _, sidecar string) {
			os.WriteFile(sidecar, []byte("{not json"), 0o644)
		}},
		{"sidecar-truncated", func(t *testing.T, _ *Cache, _, sidecar string) {
			os.Truncate(sidecar, 20)
		}},
		{"sidecar-removed", func(t *testing.T, _ *Cache, _, sidecar string) {
			os.Remove(sidecar)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := openCache(t, 0)
			ctx := context.Background()
			local, first, err := c.Materialize(ctx, src, "t.parquet", cols)
			if err != nil {
				t.Fatal(err)
			}
			c.Release(local)
			id := strings.TrimSuffix(filepath.Base(local), extData)
			tc.damage(t, c, local, c.path(id, extSidecar))
			local, st, err := c.Materialize(ctx, src, "t.parquet", cols)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release(local)
			if st.Hit || st.BytesFetched == 0 || st.BytesFetched > first.BytesFetched {
				t.Errorf("after damage: %+v; the first fetch was %d bytes", st, first.BytesFetched)
			}
			poison(t, c, local)
			if got := pqtest.Query(t, local, q); got != want {
				t.Error("repaired entry differs from the full file")
			}
		})
	}
}

// flip overwrites bytes in the middle of every cached range.
func flip(t *testing.T, local, sidecar string) {
	sc, err := loadSidecar(sidecar)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(local, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, r := range sc.Ranges {
		f.WriteAt([]byte{0xFF, 0x00, 0xFF}, r.Off+r.Len/2)
	}
}

// TestReplacedObject: an object rewritten under the same key (new ETag) is
// fetched anew, never served from the old entry.
func TestReplacedObject(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	full := filepath.Join(src.dir, "t.parquet")
	writeArrowParquet(t, full, 2000, 1000, 5)
	c := openCache(t, 0)
	ctx := context.Background()
	cols := []string{"name", "note"}
	old, _, err := c.Materialize(ctx, src, "t.parquet", cols)
	if err != nil {
		t.Fatal(err)
	}
	c.Release(old)
	writeArrowParquet(t, full, 2000, 1000, 6)
	local, st, err := c.Materialize(ctx, src, "t.parquet", cols)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(local)
	if local == old || st.Hit {
		t.Fatalf("replaced object served from %s (old %s), stats %+v", local, old, st)
	}
	q := pqtest.Scan(cols)
	if pqtest.Query(t, local, q) != pqtest.Query(t, full, q) {
		t.Error("entry of the replaced object differs from it")
	}
}

// entryFiles lists the entry files in the cache directory (no locks).
func entryFiles(t *testing.T, c *Cache) []string {
	t.Helper()
	des, err := os.ReadDir(c.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if ext := filepath.Ext(de.Name()); ext == extData || ext == extSidecar || ext == ".tmp" {
			out = append(out, de.Name())
		}
	}
	return out
}

// TestBadObjects: objects that are not Parquet, shorter than their stated
// size, or rewritten while being fetched fail with a clear error and leave
// nothing in the cache.
func TestBadObjects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(t *testing.T, src *dirSource, path string)
		class error
		msg   string
	}{
		{"not-parquet", func(t *testing.T, _ *dirSource, path string) {
			os.WriteFile(path, []byte(strings.Repeat("id,name\n1,a\n", 200)), 0o644)
		}, errdefs.ErrDataLoss, "no PAR1 magic at its end"},
		{"tiny", func(t *testing.T, _ *dirSource, path string) {
			os.WriteFile(path, []byte("PAR1"), 0o644)
		}, errdefs.ErrDataLoss, "is 4 bytes long"},
		{"garbage-footer", func(t *testing.T, _ *dirSource, path string) {
			b := []byte("PAR1" + strings.Repeat("\xff\x13", 500))
			b = append(b, 200, 0, 0, 0, 'P', 'A', 'R', '1')
			os.WriteFile(path, b, 0o644)
		}, errdefs.ErrDataLoss, "footer does not decode"},
		{"huge-footer-length", func(t *testing.T, _ *dirSource, path string) {
			b := []byte("PAR1" + strings.Repeat("x", 100))
			b = append(b, 0xff, 0xff, 0, 0, 'P', 'A', 'R', '1')
			os.WriteFile(path, b, 0o644)
		}, errdefs.ErrDataLoss, "does not fit its size"},
		{"no-leading-magic", func(t *testing.T, _ *dirSource, path string) {
			writeArrowParquet(t, path, 100, 100, 7)
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			f.WriteAt([]byte("XXXX"), 0)
			f.Close()
		}, errdefs.ErrDataLoss, "no PAR1 magic at its start"},
		{"shorter-than-stated", func(t *testing.T, src *dirSource, path string) {
			writeArrowParquet(t, path, 1000, 500, 8)
			src.extra = 100
		}, errdefs.ErrDataLoss, "is shorter than its stated size"},
		{"etag-changed-mid-fetch", func(t *testing.T, src *dirSource, path string) {
			writeArrowParquet(t, path, 1000, 500, 9)
			var once bool
			src.afterRead = func() {
				if !once {
					once = true
					writeArrowParquet(t, path, 1000, 500, 10)
				}
			}
		}, errdefs.ErrConflict, "changed while it was being fetched"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := &dirSource{dir: t.TempDir()}
			tc.setup(t, src, filepath.Join(src.dir, "obj"))
			c := openCache(t, 0)
			_, _, err := c.Materialize(context.Background(), src, "obj", []string{"id"})
			if err == nil || !errors.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want %v containing %q", err, tc.class, tc.msg)
			}
			if !strings.Contains(err.Error(), "obj") {
				t.Errorf("error %q does not name the object", err)
			}
			if files := entryFiles(t, c); len(files) != 0 {
				t.Errorf("left in the cache: %v", files)
			}
		})
	}
}

// TestMaterializeFields: columns chosen by position serve a scan that reads
// the file by position under other names.
func TestMaterializeFields(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	full := filepath.Join(src.dir, "t.parquet")
	writeArrowParquet(t, full, 4000, 1000, 13)
	c := openCache(t, 0)
	local, st, err := c.MaterializeFields(context.Background(), src, "t.parquet", []int{1, 3, 6, 99})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(local)
	if len(st.MissingColumns) != 1 || st.MissingColumns[0] != "#99" {
		t.Errorf("missing %v, want [#99]", st.MissingColumns)
	}
	poison(t, c, local)
	// The view of runtime/duckdb.CreateView: every column aliased by
	// position; the query names three.
	q := "SELECT file_row_number, x1, x3, x6.a FROM (SELECT * FROM $F AS f(x0, x1, x2, x3, x4, x5, x6)) ORDER BY file_row_number"
	if pqtest.Query(t, local, q) != pqtest.Query(t, full, q) {
		t.Error("sparse file differs from the full file")
	}
}

// viewQuery runs sql over a view made the way the query path makes it
// (runtime/duckdb.CreateView: every column cast, read by position).
func viewQuery(t *testing.T, path, sql string) string {
	t.Helper()
	db, err := duckdb.Open(duckdb.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cols := []duckdb.Column{{Name: "id", Type: "BIGINT"}, {Name: "name", Type: "VARCHAR"}, {Name: "note", Type: "VARCHAR"},
		{Name: "price", Type: "DECIMAL(18,3)"}, {Name: "big", Type: "DECIMAL(38,6)"}, {Name: "nums", Type: "INTEGER[]"},
		{Name: "s", Type: "STRUCT(a BIGINT, b VARCHAR)"}, {Name: "day", Type: "DATE"}}
	if err := db.CreateView("main", "t", cols, []string{path}, false); err != nil {
		t.Fatal(err)
	}
	if err := db.Lock("main", []string{path}); err != nil {
		t.Fatal(err)
	}
	r, err := db.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var sb strings.Builder
	for r.Next() {
		rec := r.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			for _, c := range rec.Columns() {
				sb.WriteString(c.ValueStr(i) + "|")
			}
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// TestQueryPathView: the query path's view (all columns cast, by
// position) over a file materialized for the columns the query mentions
// reads only those.
func TestQueryPathView(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	full := filepath.Join(src.dir, "t.parquet")
	pqtest.WriteDuck(t, full, 40000, 10000, 3)
	c := openCache(t, 0)
	local, _, err := c.MaterializeFields(context.Background(), src, "t.parquet", []int{1, 3, 6})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(local)
	poison(t, c, local)
	for _, q := range []string{
		"SELECT name, sum(price), count(*) FROM t GROUP BY name ORDER BY name",
		"SELECT count(*), sum(s.a) FROM t WHERE price > 500 AND s.b = 'v3'",
	} {
		if got, want := viewQuery(t, local, q), viewQuery(t, full, q); got != want {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}
}
