package query_test

import (
	"context"
	"os"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

func TestSmoke(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, q := range []string{
		"SELECT count(*), sum(usd) FROM sales.tx WHERE day = DATE '2026-01-02'",
		"SELECT * FROM sales.empty_tx",
		`SELECT "Full Name" FROM sales."VipCustomers" ORDER BY 1`,
		"SELECT * FROM events",
	} {
		res, err := query.Run(ctx, f.svc, query.Request{SQL: q, Ref: catalog.Ref{Name: "main"}})
		if err != nil {
			t.Fatal(q, err)
		}
		plansql.Explain(os.Stdout, res.Plan)
		for res.Reader.Next() {
			t.Log(res.Reader.RecordBatch())
		}
		if err := res.Reader.Err(); err != nil {
			t.Fatal(err)
		}
		res.Close()
	}
}
