package flight_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/flight"
)

// The batches of a query's stream are read into bodies that go back to a
// pool when released: a batch the caller keeps stays intact while the
// stream goes on and after it ends, and bodies used again hold the new
// rows.
func TestQueryBatchesOutliveTheStream(t *testing.T) {
	env := newBenchEnv(t)
	ctx := context.Background()
	const rows = 3_000_000 // 48 MB: several batches
	sql := "SELECT range AS a, range * 3 AS b FROM range(3000000)"
	// check checks rec's rows, the first being row next, and returns the
	// row after them.
	check := func(rec arrow.RecordBatch, next int64) int64 {
		t.Helper()
		a := rec.Column(0).(*array.Int64).Int64Values()
		b := rec.Column(1).(*array.Int64).Int64Values()
		for i := range a {
			if a[i] != next || b[i] != 3*next {
				t.Fatalf("row %d: a %d b %d", next, a[i], b[i])
			}
			next++
		}
		return next
	}
	for round := range 3 {
		r, err := env.client.Query(ctx, flight.QueryCommand{SQL: sql})
		if err != nil {
			t.Fatal(err)
		}
		var kept []arrow.RecordBatch
		var next int64
		for r.Next() {
			rec := r.RecordBatch()
			if round == 1 { // kept past the stream's end
				rec.Retain()
				kept = append(kept, rec)
				continue
			}
			next = check(rec, next)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		r.Release()
		if round == 1 && len(kept) < 3 {
			t.Fatalf("%d batches", len(kept))
		}
		for _, rec := range kept {
			next = check(rec, next)
			rec.Release()
		}
		if next != rows {
			t.Fatalf("round %d: %d rows", round, next)
		}
	}
}
