package query

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

func TestOnlyStreams(t *testing.T) {
	p, err := Parser()
	if err != nil {
		t.Fatal(err)
	}
	aggs, err := p.AggregateFunctions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"count", "sum", "avg", "string_agg", "quantile_cont"} {
		if !aggs[f] {
			t.Errorf("aggregate %s not listed", f)
		}
	}
	for sql, want := range map[string]bool{
		"SELECT * FROM t": true,
		"SELECT a, b * 2 AS c FROM t WHERE a > 3 LIMIT 10":            true,
		"SELECT range AS a, range*2 AS b FROM range(10)":              true,
		"SELECT \"count\", \"group\" FROM t WHERE s = 'sum(x) order'": true,
		"SELECT a FROM t -- group by a\n WHERE b":                     true,
		"SELECT a /* join */ FROM t":                                  true,
		"SELECT upper(s) FROM t":                                      true,
		"SELECT count(*) FROM t":                                      false,
		"SELECT SUM (a) FROM t":                                       false,
		"SELECT a FROM t GROUP BY a":                                  false,
		"SELECT a FROM t ORDER BY a":                                  false,
		"SELECT * FROM t JOIN u USING (a)":                            false,
		"SELECT DISTINCT a FROM t":                                    false,
		"SELECT row_number() OVER () FROM t":                          false,
		"SELECT a FROM t UNION ALL SELECT a FROM u":                   false,
		"SELECT a FROM t WHERE a IN (SELECT max(a) FROM u)":           false,
		"SELECT 'unterminated":                                        false,
	} {
		if got := onlyStreams(sql, aggs); got != want {
			t.Errorf("onlyStreams(%q) = %v, want %v", sql, got, want)
		}
	}
}

// TestStreamedQueryThreads: a query that only streams rows runs with
// duckdb.StreamThreads, an aggregate with the DB's own count, and
// LAKEHOUSE_DUCKDB_THREADS leaves every query the DB's own.
func TestStreamedQueryThreads(t *testing.T) {
	run := func(sql string) string {
		t.Helper()
		res, err := Execute(context.Background(), planOf(sql))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		if !res.Reader.Next() {
			t.Fatal(res.Reader.Err())
		}
		return res.Reader.RecordBatch().Column(0).ValueStr(0)
	}
	t.Setenv(duckdb.EnvThreads, "")
	if got, want := run("SELECT current_setting('threads')::BIGINT AS t"), itoa(duckdb.StreamThreads()); got != want {
		t.Errorf("streamed: threads = %s, want %s", got, want)
	}
	if got, want := run("SELECT max(current_setting('threads')::BIGINT) AS t FROM range(2)"), itoa(defaultThreads()); got != want {
		t.Errorf("aggregate: threads = %s, want %s", got, want)
	}
	// (The pool's DBs opened ahead already have the environment's count.)
	t.Setenv(duckdb.EnvThreads, "3")
	if n := threads("SELECT * FROM t"); n != 0 {
		t.Errorf("with %s=3: threads = %d, want 0 (the DB's own)", duckdb.EnvThreads, n)
	}
}

// planOf is the plan of sql over no table.
func planOf(sql string) *plansql.Plan { return &plansql.Plan{Namespace: "default", SQL: sql} }

func itoa(n int) string { return strconv.Itoa(n) }

// defaultThreads is the thread count of a DB opened without one.
func defaultThreads() int { return runtime.NumCPU() }
