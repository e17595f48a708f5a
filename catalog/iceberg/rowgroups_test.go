package iceberg

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/iceberg-go"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// TestRowGroupFilter: which of three row groups a filter keeps, and that
// no row DuckDB finds for the filter is in a row group it rules out.
func TestRowGroupFilter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rg.parquet")
	db, err := duckdb.Open(duckdb.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Row group g (0..2) holds i in [2048g, 2048g+2048); name is NULL in
	// row group 1, day is one date per row group.
	if err := db.Exec(`COPY (SELECT i AS id, i::INTEGER AS n,
		CASE WHEN i // 2048 = 1 THEN NULL ELSE 'k' || lpad(i::VARCHAR, 5, '0') END AS name,
		DATE '2020-01-01' + (i // 2048 * 100)::INTEGER AS day,
		TIMESTAMP '2020-01-01' + to_seconds(i) AS ts, i::DOUBLE AS f
		FROM range(6144) t(i)) TO ` + duckdb.Literal(path) + ` (FORMAT parquet, ROW_GROUP_SIZE 2048)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Lock("main", []string{path}); err != nil {
		t.Fatal(err)
	}
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	md := r.MetaData()
	if md.NumRowGroups() != 3 {
		t.Fatalf("%d row groups, want 3", md.NumRowGroups())
	}
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 2, Name: "n", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 3, Name: "name", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 4, Name: "day", Type: iceberg.PrimitiveTypes.Date},
		iceberg.NestedField{ID: 5, Name: "ts", Type: iceberg.PrimitiveTypes.Timestamp},
		iceberg.NestedField{ID: 6, Name: "f", Type: iceberg.PrimitiveTypes.Float64})
	lit := func(typ, text string) catalog.Literal { return catalog.Literal{Type: typ, Text: text} }
	pred := func(col, op string, vs ...catalog.Literal) catalog.Predicate {
		return catalog.Predicate{Column: col, Op: op, Values: vs}
	}
	i := func(v int) catalog.Literal { return lit("INTEGER", fmt.Sprint(v)) }
	cases := []struct {
		name   string
		where  string
		filter [][]catalog.Predicate
		want   string // kept row groups, e.g. "x.x"
	}{
		{"eq", "id = 3000", [][]catalog.Predicate{{pred("id", "=", i(3000))}}, ".x."},
		{"eq-int32", "n = 10", [][]catalog.Predicate{{pred("n", "=", i(10))}}, "x.."},
		{"lt-edge", "id < 2048", [][]catalog.Predicate{{pred("id", "<", i(2048))}}, "x.."},
		{"le-edge", "id <= 2048", [][]catalog.Predicate{{pred("id", "<=", i(2048))}}, "xx."},
		{"gt-edge", "id > 4095", [][]catalog.Predicate{{pred("id", ">", i(4095))}}, "..x"},
		{"ge-edge", "id >= 4095", [][]catalog.Predicate{{pred("id", ">=", i(4095))}}, ".xx"},
		{"between", "id BETWEEN 2000 AND 2100", [][]catalog.Predicate{{pred("id", "between", i(2000), i(2100))}}, "xx."},
		{"in", "id IN (1, 5000)", [][]catalog.Predicate{{pred("id", "in", i(1), i(5000))}}, "x.x"},
		{"ne", "id <> 1", [][]catalog.Predicate{{pred("id", "<>", i(1))}}, "xxx"},
		{"none", "id > 10000", [][]catalog.Predicate{{pred("id", ">", i(10000))}}, "..."},
		{"and", "id > 1000 AND id < 3000", [][]catalog.Predicate{{pred("id", ">", i(1000)), pred("id", "<", i(3000))}}, "xx."},
		{"or", "id = 1 OR id = 6000", [][]catalog.Predicate{{pred("id", "=", i(1))}, {pred("id", "=", i(6000))}}, "x.x"},
		{"string", "name = 'k05000'", [][]catalog.Predicate{{pred("name", "=", lit("VARCHAR", "k05000"))}}, "..x"},
		{"string-prefix", "name < 'k0'", [][]catalog.Predicate{{pred("name", "<", lit("VARCHAR", "k0"))}}, "..."},
		{"isnull", "name IS NULL", [][]catalog.Predicate{{pred("name", "isnull")}}, ".x."},
		{"notnull", "name IS NOT NULL", [][]catalog.Predicate{{pred("name", "notnull")}}, "x.x"},
		{"date", "day = DATE '2020-04-10'", [][]catalog.Predicate{{pred("day", "=", lit("DATE", "2020-04-10"))}}, ".x."},
		{"timestamp", "ts >= TIMESTAMP '2020-01-01 01:30:00'", [][]catalog.Predicate{{pred("ts", ">=", lit("TIMESTAMP", "2020-01-01 01:30:00"))}}, "..x"},
		{"float-not-pruned", "f = 1", [][]catalog.Predicate{{pred("f", "=", i(1))}}, "xxx"},
		{"unknown-column", "true", [][]catalog.Predicate{{pred("nope", "=", i(1))}}, "xxx"},
		{"group-without-usable", "id = 1 OR f = 5000", [][]catalog.Predicate{{pred("id", "=", i(1))}, {pred("f", "=", i(5000))}}, "xxx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keep := []bool{true, true, true}
			if f := newRowGroupFilter(sc, tc.filter, true); f != nil {
				keep = f.keep(md)
			}
			var got strings.Builder
			for _, k := range keep {
				got.WriteString(map[bool]string{true: "x", false: "."}[k])
			}
			if got.String() != tc.want {
				t.Errorf("kept %s, want %s", got.String(), tc.want)
			}
			// Soundness: no matching row in a pruned row group.
			for g, k := range keep {
				if k {
					continue
				}
				q := fmt.Sprintf("SELECT count(*) FROM read_parquet(%s) WHERE (%s) AND id // 2048 = %d", duckdb.Literal(path), tc.where, g)
				rd, err := db.Query(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				for rd.Next() {
					if n := rd.RecordBatch().Column(0).ValueStr(0); n != "0" {
						t.Errorf("row group %d is pruned but %s rows match", g, n)
					}
				}
				rd.Release()
			}
		})
	}
}
