package query_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/catalog"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

var update = flag.Bool("update", false, "rewrite testdata/plans.golden with the actual output")

// planCases is the query set of the golden and correctness tests.
var planCases = []struct {
	name, ns, sql string
}{
	{"aggregate", "sales", "SELECT country, count(*) AS n, round(sum(usd), 2) AS total FROM tx GROUP BY country"},
	{"partition_eq", "sales", "SELECT * FROM tx WHERE day = '2026-01-02'"},
	{"between_and_more", "sales", "SELECT id, usd FROM sales.tx WHERE day BETWEEN DATE '2026-01-02' AND DATE '2026-01-03' AND id % 2 = 0"},
	{"in_list", "sales", "SELECT id, country FROM tx WHERE country IN ('IT', 'FR') AND day >= '2026-01-03'"},
	{"is_null", "sales", "SELECT id, day FROM tx WHERE usd IS NULL"},
	{"column_stats", "sales", "SELECT id FROM tx WHERE id > 250"},
	{"const_left", "sales", "SELECT id FROM tx WHERE 105 >= id"},
	{"or_not_pushed", "sales", "SELECT id FROM tx WHERE day = '2026-01-01' OR day = '2026-01-03'"},
	{"join", "sales", `SELECT t.id, v."Full Name" FROM tx t JOIN "VipCustomers" v ON t.id % 4 + 1 = v.id WHERE t.day = '2026-01-01'`},
	{"left_join_null_side", "sales", `SELECT v.id, t.id AS tid FROM "VipCustomers" v LEFT JOIN tx t ON t.id = v.id * 100 + 3 WHERE t.day = '2026-01-02' OR t.id IS NULL`},
	{"left_join_is_null", "sales", `SELECT v.id FROM "VipCustomers" v LEFT JOIN tx t ON t.id = v.id * 100 + 7 WHERE t.usd IS NULL`},
	{"self_join", "sales", "SELECT a.id, b.id AS next FROM tx a JOIN tx b ON a.id = b.id - 100 WHERE a.day = '2026-01-01'"},
	{"self_join_both_filtered", "sales", "SELECT a.id, b.id AS next FROM tx a JOIN tx b ON a.id = b.id - 100 WHERE a.day = '2026-01-01' AND b.day = '2026-01-02'"},
	{"cte", "sales", "WITH d AS (SELECT day, sum(usd) AS s FROM tx WHERE day < '2026-01-03' GROUP BY day) SELECT day, round(s, 2) AS s FROM d"},
	{"cte_shadows_table", "sales", "WITH tx AS (SELECT 1 AS id) SELECT * FROM tx"},
	{"in_subquery", "default", `SELECT * FROM events WHERE id IN (SELECT id FROM sales."VipCustomers" WHERE country = 'IT')`},
	{"scalar_subquery", "default", "SELECT id, (SELECT max(usd) FROM sales.tx) AS m FROM events"},
	{"exists_correlated", "sales", `SELECT * FROM "VipCustomers" v WHERE EXISTS (SELECT 1 FROM tx t WHERE t.id = v.id + 200 AND day = '2026-01-02')`},
	{"window", "sales", "SELECT id, day, sum(usd) OVER (PARTITION BY day ORDER BY id) AS running FROM tx WHERE day > '2026-01-01'"},
	{"union", "sales", `SELECT id FROM tx WHERE day = '2026-01-01' UNION ALL SELECT id FROM "default".events`},
	{"empty_table", "sales", "SELECT count(*) AS n, sum(usd) AS s FROM empty_tx"},
	{"empty_table_join", "sales", "SELECT t.id FROM tx t JOIN empty_tx e ON t.id = e.id"},
	{"quoted_identifiers", "sales", `SELECT "Full Name" FROM sales."VipCustomers" WHERE "country" = 'FR'`},
	{"case_insensitive_names", "sales", `SELECT ID FROM SALES.TX WHERE DAY = '2026-01-03'`},
	{"timestamp", "default", "SELECT * FROM events WHERE ts >= TIMESTAMP '2026-01-02 00:00:00'"},
	{"unqualified_two_tables", "sales", `SELECT t.id, e.kind FROM tx t, "default".events e WHERE usd > 400 AND kind = 'buy'`},
	{"outer_column_in_subquery", "sales", `SELECT id FROM tx WHERE day = '2026-01-03' AND id IN (SELECT id + 300 FROM "default".events)`},
	{"star_qualified", "sales", `SELECT t.*, v.id FROM tx t JOIN "VipCustomers" v ON t.id = v.id + 100`},
	{"sample_not_pruned", "sales", "SELECT count(*) AS n FROM tx WHERE day = '2026-01-02' USING SAMPLE 10 ROWS (reservoir, 42)"},
	{"tablesample_not_pruned", "sales", "SELECT count(*) AS n FROM tx TABLESAMPLE reservoir(10 ROWS) REPEATABLE (7) WHERE day = '2026-01-02'"},
	{"values_no_tables", "sales", "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) v(x, y)"},
}

var (
	commitLine   = regexp.MustCompile(`commit:    [0-9a-f]+`)
	snapshotLine = regexp.MustCompile(`snapshot: \d+`)
)

// TestPlansGolden checks table resolution and --explain output of the query
// set against testdata/plans.golden (go test ./runtime/query -run
// TestPlansGolden -update rewrites it).
// cacheLine is explain's scan cache line (S3 warehouse only).
var cacheLine = regexp.MustCompile(`(?m)^  cache:    .*\n`)

func TestPlansGolden(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	eng, err := query.Parser()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, c := range planCases {
		fmt.Fprintf(&out, "=== %s (-n %s)\n%s\n--- refs\n", c.name, c.ns, c.sql)
		st, err := plansql.Analyze(ctx, eng, c.sql)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, r := range st.Tables {
			fmt.Fprintf(&out, "%s.%s @%d\n", r.Schema, r.Name, r.Pos)
		}
		fmt.Fprintln(&out, "--- explain")
		plan, err := query.Plan(ctx, f.svc, scans, query.Request{SQL: c.sql, Ref: catalog.Ref{Name: "main"}, Namespace: catalog.Namespace(c.ns)})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var b bytes.Buffer
		if err := plansql.Explain(&b, plan); err != nil {
			t.Fatal(err)
		}
		s := commitLine.ReplaceAllString(b.String(), "commit:    <commit>")
		s = snapshotLine.ReplaceAllString(s, "snapshot: <snapshot>")
		// On an S3 warehouse explain also says what the scan fetched.
		s = cacheLine.ReplaceAllString(s, "")
		out.WriteString(s + "\n")
	}
	path := filepath.Join("testdata", "plans.golden")
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, out.Bytes()) {
		t.Errorf("plans differ from %s (rerun with -update to accept):\n%s", path, diffLines(string(want), out.String()))
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, a, c)
		}
	}
	return b.String()
}

// TestResultsMatchRawDuckDB runs each query of the set through the query
// path and through a plain DuckDB holding the same tables loaded from all
// of their Parquet files (no planner, no pruning), and compares the rows.
func TestResultsMatchRawDuckDB(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, c := range planCases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Contains(c.name, "sample") {
				t.Skip("a seeded sample depends on the physical row order, which differs from the raw table's")
			}
			req := query.Request{SQL: c.sql, Ref: catalog.Ref{Name: "main"}, Namespace: catalog.Namespace(c.ns)}
			res, err := query.Run(ctx, f.svc, scans, req)
			if err != nil {
				t.Fatal(err)
			}
			got := readRows(t, res.Reader)
			res.Close()
			want := rawDuckDB(t, f.svc, catalog.Ref{Name: "main"}, res.Plan, c.sql)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("query path and raw DuckDB differ\n--- query path (%d rows)\n%s\n--- raw DuckDB (%d rows)\n%s",
					len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
			}
			if len(got) <= 1 && c.name != "empty_table" && c.name != "empty_table_join" && c.name != "cte_shadows_table" {
				t.Logf("only %d rows", len(got)-1)
			}
		})
	}
}

// readRows renders a stream as sorted "a|b|c" lines, the header first.
func readRows(t testing.TB, r array.RecordReader) []string {
	t.Helper()
	var header []string
	for _, fld := range r.Schema().Fields() {
		header = append(header, fld.Name)
	}
	var rows []string
	for r.Next() {
		rec := r.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			cells := make([]string, rec.NumCols())
			for j, col := range rec.Columns() {
				if col.IsNull(i) {
					cells[j] = "NULL"
				} else {
					cells[j] = strings.Clone(query.FormatValue(col, i))
				}
			}
			rows = append(rows, strings.Join(cells, "|"))
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(rows)
	return append([]string{strings.Join(header, "|")}, rows...)
}

// rawDuckDB loads every data file of each table the plan names (as the
// catalog lists them, unpruned) into tables of a plain DuckDB and runs sql.
func rawDuckDB(t *testing.T, svc catalog.Service, ref catalog.Ref, plan *plansql.Plan, sql string) []string {
	t.Helper()
	ctx := context.Background()
	db, err := duckdb.Open(duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, ts := range plan.Tables {
		info, err := svc.GetTable(ctx, ref, ts.Ident)
		if err != nil {
			t.Fatal(err)
		}
		var cols, names []string
		for _, c := range info.Schema {
			typ := map[string]string{"long": "BIGINT", "double": "DOUBLE", "string": "VARCHAR", "date": "DATE",
				"timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "boolean": "BOOLEAN", "int": "INTEGER"}[c.Type]
			if typ == "" {
				t.Fatalf("type %s", c.Type)
			}
			cols = append(cols, duckdb.Ident(c.Name)+" "+typ)
			names = append(names, duckdb.Ident(c.Name))
		}
		full := duckdb.Ident(string(ts.Ident.Namespace)) + "." + duckdb.Ident(ts.Ident.Name)
		mustExec(t, db, "CREATE SCHEMA IF NOT EXISTS "+duckdb.Ident(string(ts.Ident.Namespace)))
		mustExec(t, db, "CREATE TABLE "+full+" ("+strings.Join(cols, ", ")+")")
		var files []string
		for _, df := range info.Files {
			files = append(files, duckdb.Literal(strings.TrimPrefix(df.Path, "file://")))
		}
		if s3Warehouse {
			// The objects' local copies: a plan of every row and column.
			all, err := query.Plan(ctx, svc, scans, query.Request{SQL: "SELECT * FROM " + full, Ref: ref})
			if err != nil {
				t.Fatal(err)
			}
			files = files[:0]
			for _, p := range all.Tables[0].Files {
				files = append(files, duckdb.Literal(p))
			}
		}
		if len(files) > 0 {
			// Columns by position: file column names may be sanitized.
			mustExec(t, db, "INSERT INTO "+full+" SELECT * FROM read_parquet(["+strings.Join(files, ", ")+"])")
		}
		_ = names
	}
	if err := db.Lock(string(plan.Namespace), nil); err != nil {
		t.Fatal(err)
	}
	r, err := db.Query(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	return readRows(t, r)
}

func mustExec(t *testing.T, db *duckdb.DB, stmt string) {
	t.Helper()
	if err := db.Exec(stmt); err != nil {
		t.Fatal(err)
	}
}
