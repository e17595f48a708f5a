package query_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// TestBadInput: every bad query fails with a clear error of the right
// class, before execution where it can, and never panics.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	huge := "SELECT x" + strings.Repeat(" ", 1<<20) + "FROM sales.tx"
	hugeBad := "SELECT " + strings.Repeat("1 + ", 1<<18) + " FROM"
	cases := []struct {
		name, sql string
		ref       string
		class     error  // errdefs class
		contains  string // in the message
	}{
		{"syntax error position", "SELECT * FROM sales.tx WHER id = 1", "", errdefs.ErrInvalidArgument, "line 1, column 29"},
		{"syntax error caret", "SELECT id,\n  FROM sales.tx\n WHERE", "", errdefs.ErrInvalidArgument, "^"},
		{"unknown table", "SELECT * FROM sales.txx", "", errdefs.ErrNotFound, "did you mean sales.tx?"},
		{"unknown namespace", "SELECT * FROM nosuch.tx", "", errdefs.ErrNotFound, "table nosuch.tx does not exist"},
		{"unknown column", "SELECT nosuch FROM sales.tx", "", errdefs.ErrInvalidArgument, `Referenced column "nosuch" not found`},
		{"unknown ref", "SELECT 1", "nosuch", errdefs.ErrNotFound, "nosuch"},
		{"unknown commit", "SELECT 1", "main@deadbeefdeadbeef", errdefs.ErrNotFound, "deadbeef"},
		{"three-part name", "SELECT * FROM a.sales.tx", "", errdefs.ErrNotFound, "NAMESPACE.TABLE"},
		{"a file as table", "SELECT * FROM '/etc/passwd'", "", errdefs.ErrNotFound, "catalog tables only"},
		{"read_csv", "SELECT * FROM read_csv('/etc/passwd')", "", errdefs.ErrInvalidArgument, "catalog tables only"},
		{"read_parquet glob", "SELECT * FROM read_parquet('/tmp/*.parquet')", "", errdefs.ErrInvalidArgument, "catalog tables only"},
		{"read_text", "SELECT * FROM read_text('/etc/hostname')", "", errdefs.ErrInvalidArgument, "catalog tables only"},
		{"copy to", "COPY (SELECT 1) TO '/tmp/out.csv'", "", errdefs.ErrInvalidArgument, "only SELECT queries are allowed"},
		{"attach", "ATTACH '/tmp/x.db' AS x", "", errdefs.ErrInvalidArgument, "only SELECT queries are allowed"},
		{"install", "INSTALL httpfs", "", errdefs.ErrInvalidArgument, "only SELECT queries are allowed"},
		{"load", "LOAD httpfs", "", errdefs.ErrInvalidArgument, "only SELECT queries are allowed"},
		{"set", "SET enable_external_access = true", "", errdefs.ErrInvalidArgument, "only SELECT queries are allowed"},
		{"pragma", "PRAGMA threads = 1", "", errdefs.ErrInvalidArgument, "only SELECT queries are allowed"},
		{"create table", "CREATE TABLE x AS SELECT 1", "", errdefs.ErrInvalidArgument, "only SELECT queries are allowed"},
		{"two statements", "SELECT 1; SELECT 2", "", errdefs.ErrInvalidArgument, "one statement"},
		{"select then copy", "SELECT 1; COPY (SELECT 1) TO '/tmp/x.csv'", "", errdefs.ErrInvalidArgument, "only SELECT"},
		{"empty", "  ", "", errdefs.ErrInvalidArgument, "empty"},
		{"at clause", "SELECT * FROM sales.tx AT (VERSION => 1)", "", errdefs.ErrInvalidArgument, "ref"},
		{"1 MB query", huge, "", errdefs.ErrInvalidArgument, `Referenced column "x"`},
		{"1 MB syntax error", hugeBad, "", errdefs.ErrInvalidArgument, "syntax error"},
		{"too long", strings.Repeat(" ", plansql.MaxQueryBytes+1), "", errdefs.ErrInvalidArgument, "the limit is"},
		{"type error", "SELECT id + 'x' FROM sales.tx", "", errdefs.ErrInvalidArgument, "Conversion Error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := catalog.Ref{Name: "main"}
			if c.ref != "" {
				var err error
				if ref, err = catalog.ParseRef(c.ref); err != nil {
					t.Fatal(err)
				}
			}
			res, err := query.Run(ctx, f.svc, scans, query.Request{SQL: c.sql, Ref: ref, Namespace: "sales"})
			if err == nil {
				_ = readRows(t, res.Reader) // errors while streaming
				err = res.Reader.Err()
				res.Close()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, c.class) {
				t.Errorf("class %v, want %v: %v", errdefs.Class(err), c.class, err)
			}
			if msg := err.Error(); !strings.Contains(msg, c.contains) || len(msg) > 4000 {
				t.Errorf("message %.500q does not contain %q (or is too long)", msg, c.contains)
			}
		})
	}
}

// TestEmptyTable: a table without data files reads as zero rows of the
// table's columns.
func TestEmptyTable(t *testing.T) {
	f := newFixture(t)
	res, err := query.Run(context.Background(), f.svc, scans, query.Request{SQL: "SELECT * FROM sales.empty_tx", Ref: catalog.Ref{Name: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rows := readRows(t, res.Reader)
	if len(rows) != 1 || rows[0] != "id|usd|country|day" {
		t.Fatalf("rows %q", rows)
	}
	if got := res.Reader.Schema().Field(3).Type.String(); got != "date32" {
		t.Fatalf("day is %s", got)
	}
}

// TestTimeTravel: the same query at every ref form returns that state's rows.
func TestTimeTravel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const q = "SELECT count(*) AS n, min(day) AS first, max(day) AS last FROM sales.tx"
	v1 := "1|2026-01-01|2026-01-02"
	head := "1|2026-01-01|2026-01-03"
	for _, c := range []struct{ ref, want string }{
		{"main", head},
		{"v1", v1},
		{"main@" + string(f.v1.ID)[:12], v1},
		{"main@" + string(f.head.ID), head},
		{"@" + string(f.v1.ID)[:8], v1},
		{"main@" + f.between.UTC().Format("2006-01-02T15:04:05Z"), v1},
		{"main@" + f.head.Time.UTC().Format("2006-01-02T15:04:05Z"), head},
	} {
		ref, err := catalog.ParseRef(c.ref)
		if err != nil {
			t.Fatal(err)
		}
		res, err := query.Run(ctx, f.svc, scans, query.Request{SQL: q, Ref: ref})
		if err != nil {
			t.Fatalf("%s: %v", c.ref, err)
		}
		rows := readRows(t, res.Reader)
		res.Close()
		want := strings.Replace(c.want, "1|", map[string]string{v1: "50|", head: "75|"}[c.want], 1)
		if rows[1] != want {
			t.Errorf("at %s: %s, want %s", c.ref, rows[1], want)
		}
	}
}

// TestCancel: a cancelled context stops a running query.
func TestCancel(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	res, err := query.Run(ctx, f.svc, scans, query.Request{SQL: "SELECT count(*) FROM range(10000000000) a, sales.tx", Ref: catalog.Ref{Name: "main"}})
	if err == nil {
		for res.Reader.Next() {
		}
		err = res.Reader.Err()
		res.Close()
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancel took %s", d)
	}
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

var _ = duckdb.Ident
