package sql_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// These tests read DuckDB's own parse trees: they drive planner/sql with
// the real parser of runtime/duckdb.

var (
	_ plansql.Parser = (*duckdb.Engine)(nil)
	_ plansql.Parser = (*duckdb.Parser)(nil)
)

var (
	engOnce sync.Once
	eng     *duckdb.Engine
	engErr  error
)

// engine is one parser shared by every test and fuzz iteration.
func engine(t testing.TB) *duckdb.Engine {
	engOnce.Do(func() { eng, engErr = duckdb.New() })
	if engErr != nil {
		t.Fatal(engErr)
	}
	return eng
}

func TestTableRefs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, sql string
		want      string // "schema.name@pos ..."
	}{
		{"plain", "SELECT * FROM t", ".t@14"},
		{"qualified", "SELECT * FROM sales.tx", "sales.tx@14"},
		{"quoted", `SELECT * FROM "My Schema"."My Table"`, "My Schema.My Table@14"},
		{"join", "SELECT * FROM a JOIN b.c ON a.x = c.x LEFT JOIN d USING (k)", ".a@14 b.c@21 .d@48"},
		{"cte excluded", "WITH c AS (SELECT * FROM t) SELECT * FROM c", ".t@25"},
		{"cte sees earlier", "WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b", ""},
		{"cte not before definition", "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", ".b@25"},
		{"cte scope ends", "SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) x, c", ".c@56"},
		{"recursive cte", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r", ""},
		{"qualified name is not the cte", "WITH tx AS (SELECT 1) SELECT * FROM sales.tx", "sales.tx@36"},
		{"subqueries", "SELECT (SELECT max(x) FROM s1), * FROM t WHERE id IN (SELECT id FROM s2) AND EXISTS (SELECT 1 FROM s3)", ".s1@27 .t@39 .s2@69 .s3@99"},
		{"set operations", "SELECT a FROM x UNION SELECT a FROM y EXCEPT SELECT a FROM z", ".x@14 .y@36 .z@59"},
		{"window", "SELECT sum(a) OVER (PARTITION BY b) FROM w", ".w@41"},
		{"lateral", "SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.k = t.k)", ".t@14 .u@40"},
		{"values", "SELECT * FROM (VALUES (1), (2)) v(x)", ""},
		{"table function", "SELECT * FROM range(3)", ""},
		{"from first", "FROM t SELECT a", ".t@5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := plansql.Analyze(context.Background(), engine(t), c.sql)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range st.Tables {
				got = append(got, r.Schema+"."+r.Name+"@"+itoa(r.Pos))
			}
			if g := strings.Join(got, " "); g != c.want {
				t.Errorf("refs %q, want %q", g, c.want)
			}
		})
	}
}

func itoa(n int) string {
	if n < 0 {
		return "-1"
	}
	s := ""
	for {
		s = string(rune('0'+n%10)) + s
		n /= 10
		if n == 0 {
			return s
		}
	}
}

func TestTableRefsErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, sql, contains string }{
		{"syntax", "SELECT * FROM t WHER x", "line 1, column 22"},
		{"end of input", "SELECT * FROM", "syntax error at end of input"},
		{"not a query", "DELETE FROM t", "only SELECT queries are allowed"},
		{"copy", "COPY t TO 'x.csv'", "only SELECT queries are allowed"},
		{"two statements", "SELECT 1; SELECT 2", "one statement"},
		{"three parts", "SELECT * FROM a.b.c", "NAMESPACE.TABLE"},
		{"empty", "", "empty"},
		{"default namespace", "SELECT * FROM default.events", `quote the namespace, "default".table`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := plansql.Analyze(context.Background(), engine(t), c.sql)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("class %v", errdefs.Class(err))
			}
			if !strings.Contains(err.Error(), c.contains) {
				t.Errorf("%q does not contain %q", err, c.contains)
			}
		})
	}
}

// FuzzTableRefs: any text parses into table references or fails with an
// ErrInvalidArgument error; positions are in range; nothing panics.
func FuzzTableRefs(f *testing.F) {
	for _, s := range []string{
		"SELECT * FROM t", "WITH c AS (SELECT * FROM a) SELECT * FROM c JOIN b USING (x)",
		`SELECT "x""y" FROM "s"."t" WHERE a IN (SELECT 1 FROM u)`, "SELECT 1; SELECT 2", "COPY t TO 'f'",
		"SELECT * FROM t WHERE", "FROM t", "SELECT (SELECT 1 FROM (SELECT 2 FROM q))", "\x00", "SELECT '\xff'",
		"SELECT * FROM a.b.c", "SELECT * FROM t AT (VERSION => 1)", "PIVOT t ON a", "SELECT * FROM 'x.parquet'",
	} {
		f.Add(s)
	}
	e := engine(f)
	f.Fuzz(func(t *testing.T, sql string) {
		st, err := plansql.Analyze(context.Background(), e, sql)
		if err != nil {
			var se *plansql.SyntaxError
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.As(err, &se) {
				t.Fatalf("error of class %v: %v", errdefs.Class(err), err)
			}
			_ = err.Error()
			return
		}
		for _, r := range st.Tables {
			if r.Pos < -1 || r.Pos >= len(sql) {
				t.Fatalf("bad ref %+v for %q", r, sql)
			}
		}
	})
}

// TestAnalyzeOutput: the output columns come from the same parse as the
// table references.
func TestAnalyzeOutput(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, sql, want string }{
		{"names and aliases", "SELECT a, b AS c, t.d, sum(x) AS total FROM t GROUP BY ALL", "a c d total"},
		{"star", "SELECT * FROM t", ""},
		{"unaliased expression", "SELECT a + 1 FROM t", ""},
		{"set operation", "SELECT x FROM a UNION ALL SELECT y FROM b", "x"},
		{"cte", "WITH c AS (SELECT 1 AS one) SELECT one FROM c", "one"},
	}
	for _, c := range cases {
		st, err := plansql.Analyze(context.Background(), engine(t), c.sql)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := strings.Join(st.Output, " "); got != c.want {
			t.Errorf("%s: output %q, want %q", c.name, got, c.want)
		}
	}
}

// TestNonFiniteLiterals: DuckDB writes a literal beyond a double's range
// as Infinity, which is not JSON; the query is still read, and such a
// bound filters nothing out of the scan (NaN orders above it).
func TestNonFiniteLiterals(t *testing.T) {
	t.Parallel()
	for _, sql := range []string{
		"SELECT 1e999 AS x",
		"SELECT * FROM t WHERE a < 1e999 AND b > -1e999 AND c = 'Infinity'",
		`SELECT "NaN" FROM t WHERE a <> 1e999`,
	} {
		st, err := plansql.Analyze(context.Background(), engine(t), sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		for _, b := range st.Blocks {
			for _, f := range b.Filters {
				if f.Column == "a" || f.Column == "b" {
					t.Errorf("%s: filter %+v on a non-finite bound", sql, f)
				}
			}
		}
	}
}
