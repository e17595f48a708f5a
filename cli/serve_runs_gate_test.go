package cli

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/flight"
)

// TestAdmission: a run's model waits while a query runs and goes once the
// last one ends; runs waiting go by priority, then in order of arrival; a
// run waits at most maxWait; a cancelled run stops waiting.
func TestAdmission(t *testing.T) {
	t.Parallel()
	a := newAdmission()
	ctx := context.Background()
	if err := a.run(ctx, 5); err != nil {
		t.Fatalf("no query: the run waited: %v", err)
	}

	q1, q2 := a.query(), a.query()
	order := make([]int, 4)
	var wg sync.WaitGroup
	for i, prio := range []int{3, 9, 3, 5} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := a.pass(ctx, prio)
			if err != nil {
				t.Error(err)
			}
			order[n-1] = i // the first run above went through first
		}()
		// Arrivals in order: each is waiting before the next comes.
		waitGate(t, func() bool { a.mu.Lock(); defer a.mu.Unlock(); return len(a.waiting) == i+1 })
	}
	time.Sleep(50 * time.Millisecond)
	q1()
	q1() // done twice counts once
	time.Sleep(50 * time.Millisecond)
	a.mu.Lock()
	if a.passed != 1 {
		t.Errorf("runs went while a query was still running: %v", order)
	}
	a.mu.Unlock()
	q2()
	wg.Wait()
	if want := []int{1, 3, 0, 2}; !sameInts(order, want) {
		t.Errorf("runs went in order %v, want %v (priority 9, 5, then the two 3s as they came)", order, want)
	}

	// A query whose client never reads it holds a run back maxWait at most.
	a.maxWait = 100 * time.Millisecond
	stuck := a.query()
	start := time.Now()
	if err := a.run(ctx, 5); err != nil || time.Since(start) < 100*time.Millisecond {
		t.Errorf("run under a stuck query: %v after %s", err, time.Since(start))
	}
	a.maxWait = time.Hour
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := a.run(cctx, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a cancelled run waiting: %v", err)
	}
	stuck()
	if len(a.waiting) != 0 || a.queries != 0 {
		t.Errorf("left: %d waiting, %d queries", len(a.waiting), a.queries)
	}
}

func waitGate(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
	}
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type gateQueries struct{ flight.Queries }

func (gateQueries) Run(ctx context.Context, q flight.QueryCommand) (array.RecordReader, func() error, error) {
	if q.SQL == "bad" {
		return nil, nil, errors.New("bad query")
	}
	return nil, func() error { return nil }, nil
}

// TestGatedQueries: a query counts from its start until its reader is
// closed; one that fails to start does not count.
func TestGatedQueries(t *testing.T) {
	t.Parallel()
	a := newAdmission()
	g := &gatedQueries{Queries: gateQueries{}, gate: a}
	if _, _, err := g.Run(context.Background(), flight.QueryCommand{SQL: "bad"}); err == nil || a.queries != 0 {
		t.Fatalf("failed query: err %v, %d counted", err, a.queries)
	}
	_, closeFn, err := g.Run(context.Background(), flight.QueryCommand{SQL: "SELECT 1"})
	if err != nil || a.queries != 1 {
		t.Fatalf("query: err %v, %d counted", err, a.queries)
	}
	closeFn()
	if a.queries != 0 {
		t.Errorf("a closed query still counts")
	}
}
