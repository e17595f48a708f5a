package query_test

import (
	"context"
	"errors"
	"testing"
	"time"

	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// TestCancelStopsAggregate: Ctrl-C (a cancelled context) stops a large
// aggregate on the query path within a second or so; the bound is loose
// so a busy machine does not fail it.
func TestCancelStopsAggregate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	at := make(chan time.Time, 1)
	time.AfterFunc(300*time.Millisecond, func() { at <- time.Now(); cancel() })
	res, err := query.Execute(ctx, &plansql.Plan{Namespace: "default",
		SQL: "SELECT sum(i) AS s, max(i % 7) AS m FROM range(10000000000) t(i)"})
	if err == nil {
		for res.Reader.Next() {
		}
		err = res.Reader.Err()
		res.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(<-at); d > 5*time.Second {
		t.Fatalf("query returned %s after cancel", d)
	}
}
