package query_test

import (
	"context"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// TestReusedDB: queries over the same views run in the DuckDB the last
// one left (duckdb.Pool.Put) with the same results, also after one that
// was stopped early, failed or was cancelled mid-stream.
func TestReusedDB(t *testing.T) {
	f := newFixture(t)
	main := catalog.Ref{Name: "main"}
	const q = "SELECT count(*) AS n, min(day) AS first, max(day) AS last FROM sales.tx"
	run := func(ctx context.Context, sql string) (*query.Result, error) {
		return query.Run(ctx, f.svc, scans, query.Request{SQL: sql, Ref: main})
	}
	want := ""
	check := func(step string) {
		t.Helper()
		res, err := run(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		rows := readRows(t, res.Reader)
		res.Close()
		if want == "" {
			want = rows[1]
		}
		if rows[1] != want {
			t.Errorf("%s: %s, want %s", step, rows[1], want)
		}
	}
	check("first")
	check("again")
	// Stopped after the first batch.
	res, err := run(context.Background(), "SELECT * FROM sales.tx, range(100000)")
	if err != nil {
		t.Fatal(err)
	}
	res.Reader.Next()
	res.Close()
	check("after a query stopped early")
	// Failed while streaming.
	res, err = run(context.Background(), "SELECT CAST(day AS VARCHAR)::INTEGER FROM sales.tx")
	if err == nil {
		for res.Reader.Next() {
		}
		res.Close()
	}
	check("after a failed query")
	// Cancelled mid-stream, then closed.
	ctx, cancel := context.WithCancel(context.Background())
	res, err = run(ctx, "SELECT * FROM sales.tx, range(1000000)")
	if err != nil {
		t.Fatal(err)
	}
	res.Reader.Next()
	cancel()
	for res.Reader.Next() {
	}
	res.Close()
	check("after a cancelled query")
	// Closed first, cancelled after (the server's order).
	ctx, cancel = context.WithCancel(context.Background())
	res, err = run(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	readRows(t, res.Reader)
	res.Close()
	cancel()
	check("after a query cancelled once closed")
}

// TestSeedNotReused: a query that sets DuckDB's random seed does not hand
// its DB to the next query over the same views, so one user cannot fix the
// random() another user's query sees.
func TestSeedNotReused(t *testing.T) {
	f := newFixture(t)
	main := catalog.Ref{Name: "main"}
	draw := func(sql string) string {
		t.Helper()
		res, err := query.Run(context.Background(), f.svc, scans, query.Request{SQL: sql, Ref: main})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		return readRows(t, res.Reader)[1]
	}
	const seeded = "SELECT setseed(0.42) AS s, count(*) AS n FROM sales.tx"
	const next = "SELECT random() AS r, count(*) AS n FROM sales.tx"
	draw(seeded)
	first := draw(next)
	draw(seeded)
	if second := draw(next); second == first {
		t.Errorf("random() after setseed gave %s twice: the seeded DB was reused", first)
	}
}
