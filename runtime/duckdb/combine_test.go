package duckdb

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// null wraps a column so that some rows are NULL.
func null(expr, name string, every int) string {
	return "CASE WHEN i % " + itoa(every) + " = 3 THEN NULL ELSE " + expr + " END AS " + name
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// directSQL has a column of every type Combine copies itself, with NULLs,
// over chunks of odd sizes (the filter drops a row in five).
var directSQL = "SELECT " +
	null("(i % 100)::TINYINT", "t8", 11) + ", (i % 30000)::SMALLINT AS s16, " +
	null("i::INTEGER", "i32", 13) + ", i * 1000003 AS i64, (i % 200)::UTINYINT AS u8, " +
	"(i % 60000)::USMALLINT AS u16, i::UINTEGER AS u32, " + null("i::UBIGINT", "u64", 17) + ", " +
	"i::FLOAT / 7 AS f32, " + null("i / 3", "f64", 5) + ", i % 3 = 0 AS b, " + null("i % 4 = 1", "bn", 7) + ", " +
	null("DATE '2020-01-01' + (i % 1000)::INTEGER", "d", 9) + ", " +
	"TIME '00:00:00' + INTERVAL (i % 86400) SECOND AS tm, " +
	null("TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND", "ts", 19) + ", " +
	"(TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND)::TIMESTAMP_S AS ts_s, " +
	"(TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND)::TIMESTAMP_MS AS ts_ms, " +
	"(TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND)::TIMESTAMP_NS AS ts_ns, " +
	null("(TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND)::TIMESTAMPTZ", "ts_tz", 29) + ", " +
	null("repeat('x', (i % 20)::INTEGER) || i::VARCHAR", "s", 7) + ", " +
	"i::VARCHAR AS short, " + null("('ab' || i::VARCHAR)::BLOB", "bl", 23) + ", " +
	"CASE WHEN i < 0 THEN 'never' END AS allnull, 'k' AS konst, 42 AS answer, " +
	"['it', 'fr', 'de'][(i % 3)::INTEGER + 1] AS country, " +
	// The first NULLs come after several chunks of valid rows.
	"CASE WHEN i > 9000 AND i % 3 = 0 THEN NULL ELSE i END AS late, " +
	"CASE WHEN i > 9000 AND i % 3 = 0 THEN NULL ELSE i::VARCHAR END AS late_s " +
	"FROM range(20000) t(i) WHERE i % 5 <> 1"

// otherSQL needs DuckDB's Arrow conversion (decimal, interval, list,
// struct, uuid).
var otherSQL = "SELECT i, (i / 100)::DECIMAL(18, 2) AS dec, INTERVAL (i) SECOND AS iv, [i, i + 1] AS l, " +
	"{'a': i} AS st, i::HUGEINT AS h, (['x', 'y'][(i % 2)::INTEGER + 1])::ENUM('x', 'y') AS e, " + null("('00000000-0000-0000-0000-' || lpad(i::VARCHAR, 12, '0'))::UUID", "u", 7) + " FROM range(20000) t(i) WHERE i % 5 <> 1"

func queryDB(t *testing.T, sql string, files ...string) *Reader {
	t.Helper()
	db, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Lock("main", files); err != nil {
		t.Fatal(err)
	}
	r, err := db.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Release)
	return r
}

// readAll reads r to the end: the batches' sizes and each column whole.
func readAll(t *testing.T, r *Reader) ([]int64, []arrow.Array) {
	t.Helper()
	var sizes []int64
	parts := make([][]arrow.Array, r.Schema().NumFields())
	for r.Next() {
		rec := r.RecordBatch()
		sizes = append(sizes, rec.NumRows())
		for i := range parts {
			c := rec.Column(i)
			c.Retain()
			parts[i] = append(parts[i], c)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	cols := make([]arrow.Array, len(parts))
	for i, p := range parts {
		c, err := array.Concatenate(p, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range p {
			a.Release()
		}
		cols[i] = c
		t.Cleanup(c.Release)
	}
	return sizes, cols
}

func checkCombined(t *testing.T, sql string, direct bool, rows int, files ...string) []int64 {
	t.Helper()
	_, want := readAll(t, queryDB(t, sql, files...))
	r := queryDB(t, sql, files...)
	if (r.cols != nil) != direct {
		t.Fatalf("direct copy = %v, want %v (schema %v)", r.cols != nil, direct, r.Schema())
	}
	r.Combine(rows)
	sizes, got := readAll(t, r)
	for i, s := range sizes {
		if i < len(sizes)-1 && s < int64(rows) && maxStringBytes > 1<<20 {
			t.Errorf("batch %d has %d rows, want at least %d", i, s, rows)
		}
	}
	for i := range want {
		name := r.Schema().Field(i).Name
		if !arrow.TypeEqual(want[i].DataType(), got[i].DataType()) {
			t.Errorf("column %s: type %s, want %s", name, got[i].DataType(), want[i].DataType())
			continue
		}
		if want[i].NullN() != got[i].NullN() {
			t.Errorf("column %s: %d NULLs, want %d", name, got[i].NullN(), want[i].NullN())
		}
		if !array.Equal(want[i], got[i]) {
			t.Errorf("column %s differs from DuckDB's conversion", name)
		}
		if v, ok := got[i].(interface{ ValidateFull() error }); ok {
			if err := v.ValidateFull(); err != nil {
				t.Errorf("column %s: %v", name, err)
			}
		}
	}
	return sizes
}

func TestCombineDirect(t *testing.T) {
	sizes := checkCombined(t, directSQL, true, 5000)
	var rows int64
	for _, s := range sizes {
		rows += s
	}
	if rows != 16000 || len(sizes) > 4 {
		t.Errorf("batches %v, want 16,000 rows in at most 4", sizes)
	}
}

// Parquet's dictionary-encoded and constant columns reach DuckDB's
// result as dictionary and constant vectors; the chunks handed out are
// flat.
func TestCombineParquet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.parquet")
	db, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Exec("COPY (" + directSQL + ") TO " + Literal(path) + " (FORMAT parquet, ROW_GROUP_SIZE 3000)"); err != nil {
		t.Fatal(err)
	}
	checkCombined(t, "SELECT * FROM read_parquet("+Literal(path)+")", true, 5000, path)
	checkCombined(t, "SELECT country, konst, s FROM read_parquet("+Literal(path)+") WHERE u32 % 3 = 1", true, 5000, path)
}

func TestCombineConverted(t *testing.T) {
	checkCombined(t, otherSQL, false, 5000)
}

func TestCombineStringLimit(t *testing.T) {
	defer func(n int64) { maxStringBytes = n }(maxStringBytes)
	maxStringBytes = 20000
	sizes := checkCombined(t, directSQL, true, 5000)
	if len(sizes) < 8 {
		t.Errorf("batches %v: the string limit did not cut them", sizes)
	}
}

func TestCombineEmpty(t *testing.T) {
	r := queryDB(t, "SELECT i FROM range(10) t(i) WHERE i > 100")
	r.Combine(100)
	if r.Next() {
		t.Fatal("a batch from an empty result")
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
}

// BenchmarkCombine reads a 10M-row Parquet table (id, usd, country, qty)
// in 128K-row batches, built straight from DuckDB's vectors (direct) and
// through DuckDB's Arrow conversion of each chunk and concatenation
// (converted, what Combine does for other types), in the same run:
//
//	go test -tags duckdb_arrow -run '^$' -bench Combine -benchtime 5x ./runtime/duckdb
func BenchmarkCombine(b *testing.B) {
	path := filepath.Join(b.TempDir(), "events.parquet")
	db, err := Open(Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Exec("COPY (SELECT i AS id, (i * 7919 % 100000) / 100 AS usd, ['it', 'fr', 'de', 'es', 'nl', 'us', 'gb', 'jp'][(i * 31 % 8)::INTEGER + 1] AS country, i % 13 AS qty " +
		"FROM range(10000000) t(i)) TO " + Literal(path) + " (FORMAT parquet, ROW_GROUP_SIZE 1048576)"); err != nil {
		b.Fatal(err)
	}
	db.Close()
	for _, mode := range []string{"direct", "converted"} {
		b.Run(mode, func(b *testing.B) {
			var rows int64
			for b.Loop() {
				db, err := Open(Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := db.Lock("main", []string{path}); err != nil {
					b.Fatal(err)
				}
				r, err := db.Query(b.Context(), "SELECT * FROM read_parquet("+Literal(path)+")")
				if err != nil {
					b.Fatal(err)
				}
				if mode == "converted" {
					r.cols = nil
				}
				r.Combine(128 << 10)
				rows = 0
				for r.Next() {
					rows += r.RecordBatch().NumRows()
				}
				if r.Err() != nil || rows != 10_000_000 {
					b.Fatalf("%d rows: %v", rows, r.Err())
				}
				r.Release()
				db.Close()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mrows/s")
		})
	}
}

// TestCombineWithin: a batch ends once its wait has passed, however few
// rows it holds, and the rows are all there.
func TestCombineWithin(t *testing.T) {
	r := queryDB(t, "SELECT range AS i FROM range(100000)")
	r.CombineWithin(1<<20, time.Nanosecond)
	sizes, cols := readAll(t, r)
	var n int64
	for i, s := range sizes {
		if s > 2048 {
			t.Errorf("batch %d has %d rows, want one chunk's (the wait passed)", i, s)
		}
		n += s
	}
	if n != 100000 || cols[0].Len() != 100000 {
		t.Errorf("%d rows, want 100000", n)
	}
}

// TestCombineSparseUnion: a result arrow-go cannot concatenate (a sparse
// union) is read one batch per chunk, all of it, instead of failing.
func TestCombineSparseUnion(t *testing.T) {
	r := queryDB(t, "SELECT union_value(k := range)::UNION(k BIGINT, s VARCHAR) AS u FROM range(10000)")
	r.Combine(1 << 20)
	var n, batches int64
	for r.Next() {
		n += r.RecordBatch().NumRows()
		batches++
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 10000 || batches < 2 {
		t.Errorf("%d rows in %d batches", n, batches)
	}
}
