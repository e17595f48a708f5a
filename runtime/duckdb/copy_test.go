package duckdb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// openOut opens a DB whose output directory is a fresh private one, locked
// with no readable files.
func openOut(t *testing.T) (*DB, string) {
	t.Helper()
	dir, err := os.MkdirTemp(t.TempDir(), "out-")
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(Options{Threads: 2, OutputDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Lock("main", nil); err != nil {
		t.Fatal(err)
	}
	return db, dir
}

// readBack runs sql over the Parquet file path (as the table $F) in a
// fresh sandboxed DB and returns its first row as text.
func readBack(t *testing.T, path, sql string) []string {
	t.Helper()
	db, err := Open(Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Lock("main", []string{path}); err != nil {
		t.Fatal(err)
	}
	r, err := db.Query(context.Background(), strings.ReplaceAll(sql, "$F", "read_parquet("+Literal(path)+", file_row_number=true)"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatalf("no row: %v", r.Err())
	}
	var row []string
	for _, c := range r.RecordBatch().Columns() {
		row = append(row, strings.Clone(c.ValueStr(0))) // the batch is freed with the DB
	}
	return row
}

// TestCopyParquetOrderAndLimit: the file holds the query's rows in its
// order, cut at the limit; the row count is the COPY's. A trailing
// semicolon or comment ends the user's SQL as it does for Query.
func TestCopyParquetOrderAndLimit(t *testing.T) {
	for _, c := range []struct {
		name  string
		sql   string
		limit int64
		want  int64
	}{
		{"all", "SELECT i FROM range(300000) t(i) ORDER BY i DESC", -1, 300000},
		{"limit", "SELECT i FROM range(300000) t(i) ORDER BY i DESC", 200000, 200000},
		{"limit 0", "SELECT i FROM range(300000) t(i) ORDER BY i DESC", 0, 0},
		{"semicolon and comment", "SELECT i FROM range(300000) t(i) ORDER BY i DESC; -- the end", 10, 10},
		{"block comment", "SELECT i FROM range(300000) t(i) ORDER BY i DESC /* the end */", -1, 300000},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, dir := openOut(t)
			path := filepath.Join(dir, "out.parquet")
			n, err := db.CopyParquet(context.Background(), c.sql, path, c.limit)
			if err != nil || n != c.want {
				t.Fatalf("CopyParquet = %d, %v; want %d rows", n, err, c.want)
			}
			got := readBack(t, path, "SELECT count(*), coalesce(bool_and(i = 299999 - file_row_number), true) FROM $F")
			if got[0] != strconv.FormatInt(c.want, 10) || got[1] != "true" {
				t.Errorf("read back %v, want %d rows in descending order", got, c.want)
			}
		})
	}
}

// TestCopyParquetSandbox: the output directory is the only place DuckDB
// writes or reads beyond the planned files; CopyParquet writes only
// directly in it, and user SQL that tries to break out of the SELECT it is
// wrapped in fails before anything runs.
func TestCopyParquetSandbox(t *testing.T) {
	db, dir := openOut(t)
	outside := filepath.Dir(dir)
	evil := filepath.Join(outside, "evil.csv")
	ctx := context.Background()
	for _, c := range []struct {
		name, sql, path string
	}{
		{"path outside the directory", "SELECT 1 AS x", evil},
		{"path below the directory", "SELECT 1 AS x", filepath.Join(dir, "sub", "out.parquet")},
		{"path climbing out", "SELECT 1 AS x", dir + "/../evil.parquet"},
		{"relative path", "SELECT 1 AS x", "out.parquet"},
		{"closing the parenthesis", "SELECT 1 AS x) TO " + Literal(evil) + " (FORMAT csv); --", filepath.Join(dir, "out.parquet")},
		{"second statement", "SELECT 1 AS x; COPY (SELECT 1) TO " + Literal(evil) + " (FORMAT csv)", filepath.Join(dir, "out.parquet")},
		{"reading a host file", "SELECT * FROM read_csv('/etc/passwd')", filepath.Join(dir, "out.parquet")},
		{"listing the parent", "SELECT * FROM glob(" + Literal(outside+"/*") + ")", filepath.Join(dir, "out.parquet")},
		{"settings", "SELECT * FROM duckdb_settings() WHERE name = 'x'; SET allowed_directories=['/']", filepath.Join(dir, "out.parquet")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if n, err := db.CopyParquet(ctx, c.sql, c.path, -1); err == nil {
				t.Fatalf("CopyParquet wrote %d rows", n)
			}
			if _, err := os.Stat(evil); err == nil {
				t.Fatalf("%s was written", evil)
			}
		})
	}
	// The DB is still usable, still locked.
	for _, sql := range []string{"SET allowed_directories=['/']", "ATTACH " + Literal(filepath.Join(outside, "x.db")), "COPY (SELECT 1) TO " + Literal(evil)} {
		if r, err := db.Query(ctx, sql); err == nil {
			r.Release()
			t.Errorf("%s: not refused", sql)
		}
	}
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("%s holds %d entries, want only the output directory", outside, len(ents))
	}
}

// TestCopyParquetTypes: types DuckDB's writer stores as their Arrow form
// are written, converted where needed; others are ErrCopyUnsupported.
func TestCopyParquetTypes(t *testing.T) {
	ok := []string{
		"SELECT 1::HUGEINT AS h, gen_random_uuid() AS u, '[1]'::JSON AS j, INTERVAL '1 day' AS iv, NULL::INTERVAL AS n",
		"SELECT 1::UTINYINT AS a, 1.5::FLOAT AS b, TIMESTAMP_NS '2024-01-01' AS c, TIMESTAMPTZ '2024-01-01' AS d, 'x'::BLOB AS e, TIME '01:02:03' AS f",
	}
	unsupported := []string{
		"SELECT [1, 2] AS l",
		"SELECT {'a': 1} AS s",
		"SELECT 'a'::ENUM('a', 'b') AS e",
		"SELECT TIMESTAMP_S '2024-01-01' AS t",
		"SELECT 1 AS x, 2 AS x",
		"SELECT 1 AS x, 2 AS X",
	}
	for _, sql := range ok {
		db, dir := openOut(t)
		if _, err := db.CopyParquet(context.Background(), sql, filepath.Join(dir, "out.parquet"), -1); err != nil {
			t.Errorf("%s: %v", sql, err)
		}
	}
	for _, sql := range unsupported {
		db, dir := openOut(t)
		if _, err := db.CopyParquet(context.Background(), sql, filepath.Join(dir, "out.parquet"), -1); !errors.Is(err, ErrCopyUnsupported) {
			t.Errorf("%s: err = %v, want ErrCopyUnsupported", sql, err)
		}
	}
}

// TestCopyParquetIntervals: intervals become struct<months, days,
// nanoseconds> with their parts' signs, NULL a NULL struct.
func TestCopyParquetIntervals(t *testing.T) {
	db, dir := openOut(t)
	path := filepath.Join(dir, "out.parquet")
	sql := `SELECT * FROM (VALUES (1, INTERVAL '1 year 2 days 3 hours 4.5 seconds'), (2, INTERVAL '-1 month 1 microsecond'),
		(3, -INTERVAL '27 hours 61 minutes 1.000001 seconds'), (4, NULL)) t(id, iv) ORDER BY id`
	if _, err := db.CopyParquet(context.Background(), sql, path, -1); err != nil {
		t.Fatal(err)
	}
	got := readBack(t, path, "SELECT string_agg(iv::VARCHAR, ' | ' ORDER BY id) FROM $F")
	want := "{'months': 12, 'days': 2, 'nanoseconds': 10804500000000} | {'months': -1, 'days': 0, 'nanoseconds': 1000} | " +
		"{'months': 0, 'days': 0, 'nanoseconds': -100861000001000}"
	if got[0] != want {
		t.Errorf("intervals:\n got %s\nwant %s", got[0], want)
	}
	if got := readBack(t, path, "SELECT iv IS NULL FROM $F WHERE id = 4"); got[0] != "true" {
		t.Errorf("NULL interval read back as %v", got)
	}
}
