// Package pqtest holds the Parquet helpers of the scan cache's tests:
// querying a file with DuckDB and measuring a column's chunks.
package pqtest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// WriteDuck writes a Parquet file with DuckDB's own writer: rows rows in
// row groups of rowGroup rows, zstd-compressed, with integer, string,
// decimal, list, struct and date columns (id, name, note, price, big,
// nums, s, day); seed varies the values.
func WriteDuck(t testing.TB, path string, rows, rowGroup, seed int) {
	t.Helper()
	db, err := duckdb.Open(duckdb.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Exec(fmt.Sprintf(`COPY (SELECT i AS id, 'name ' || ((i + %[4]d) %% 13) AS name,
		CASE WHEN i %% 5 = 0 THEN NULL ELSE md5((i + %[4]d)::VARCHAR) END AS note,
		((i + %[4]d) * 7 %% 100000)::DECIMAL(18,3) AS price, (i * 1234567)::DECIMAL(38,6) AS big,
		[i, i + 1, (i + %[4]d) %% 3]::INTEGER[] AS nums, {'a': i %% 11, 'b': 'v' || (i %% 17)} AS s,
		DATE '2020-01-01' + (i %% 900)::INTEGER AS day
		FROM range(%[1]d) t(i)) TO %[2]s (FORMAT parquet, ROW_GROUP_SIZE %[3]d, COMPRESSION zstd)`,
		rows, duckdb.Literal(path), rowGroup, seed))
	if err != nil {
		t.Fatal(err)
	}
}

// Query runs sql with $F standing for read_parquet(path, with
// file_row_number) in a fresh sandboxed DuckDB and returns every row as
// text, one line each.
func Query(t testing.TB, path, sql string) string {
	t.Helper()
	db, err := duckdb.Open(duckdb.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Lock("main", []string{path}); err != nil {
		t.Fatal(err)
	}
	q := strings.ReplaceAll(sql, "$F", "read_parquet("+duckdb.Literal(path)+", file_row_number=true)")
	r, err := db.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer r.Release()
	var sb strings.Builder
	for r.Next() {
		rec := r.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			for j, c := range rec.Columns() {
				if j > 0 {
					sb.WriteByte('|')
				}
				sb.WriteString(c.ValueStr(i))
			}
			sb.WriteByte('\n')
		}
	}
	if err := r.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return sb.String()
}

// Scan is the query of cols (nil: all) in file order, with the row number.
func Scan(cols []string) string {
	sel := "*"
	if cols != nil {
		sel = "file_row_number, " + strings.Join(cols, ", ")
	}
	return "SELECT " + sel + " FROM $F ORDER BY file_row_number"
}

// ColumnBytes is the compressed size of the chunks of the top-level column
// col (all its leaves) in the Parquet file at path.
func ColumnBytes(t testing.TB, path, col string) int64 {
	t.Helper()
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	md := r.MetaData()
	var n int64
	for i, c := range md.Schema.Columns() {
		if c.ColumnPath()[0] != col {
			continue
		}
		for rg := 0; rg < md.NumRowGroups(); rg++ {
			cc, err := md.RowGroup(rg).ColumnChunk(i)
			if err != nil {
				t.Fatal(err)
			}
			n += cc.TotalCompressedSize()
		}
	}
	return n
}
