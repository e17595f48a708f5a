package cli

import (
	"context"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/flight"
)

// admission gives a server's interactive queries the way over its batch
// runs: a query is admitted at once, always; a run's model starts only
// while no query is running (from GetFlightInfo until its reader is
// closed), and among the runs waiting, the one of highest priority (then
// the one that came first) goes first. A run waits at most maxWait per
// model, so a query whose client never reads it cannot stall runs for
// good.
type admission struct {
	mu      sync.Mutex
	queries int
	waiting []*gateWaiter
	seq     uint64
	// changed is closed (and replaced) whenever queries or waiting change.
	changed chan struct{}
	maxWait time.Duration
	// passed counts the models let through.
	passed uint64
}

type gateWaiter struct {
	prio int
	seq  uint64
}

// defaultGateWait bounds how long a run's model waits for queries.
const defaultGateWait = 30 * time.Second

func newAdmission() *admission {
	return &admission{changed: make(chan struct{}), maxWait: defaultGateWait}
}

// broadcast wakes every waiter; a.mu is held.
func (a *admission) broadcast() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// query counts a query as running until done is called (once or more).
func (a *admission) query() (done func()) {
	a.mu.Lock()
	a.queries++
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.queries--
			a.broadcast()
			a.mu.Unlock()
		})
	}
}

// first reports whether w goes before every other waiting run.
func (a *admission) first(w *gateWaiter) bool {
	for _, o := range a.waiting {
		if o != w && (o.prio > w.prio || o.prio == w.prio && o.seq < w.seq) {
			return false
		}
	}
	return true
}

// run waits until a run of priority prio may start its next model.
func (a *admission) run(ctx context.Context, prio int) error {
	_, err := a.pass(ctx, prio)
	return err
}

// pass is run; it returns how many models went through before this one.
func (a *admission) pass(ctx context.Context, prio int) (uint64, error) {
	a.mu.Lock()
	w := &gateWaiter{prio: prio, seq: a.seq}
	a.seq++
	a.waiting = append(a.waiting, w)
	defer func() {
		for i, o := range a.waiting {
			if o == w {
				a.waiting = append(a.waiting[:i], a.waiting[i+1:]...)
				break
			}
		}
		a.broadcast()
		a.mu.Unlock()
	}()
	deadline := time.NewTimer(a.maxWait)
	defer deadline.Stop()
	expired := false
	for {
		if a.first(w) && (a.queries == 0 || expired) {
			a.passed++
			return a.passed - 1, nil
		}
		ch := a.changed
		a.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			expired = true
		case <-ctx.Done():
			a.mu.Lock()
			return 0, ctx.Err()
		}
		a.mu.Lock()
	}
}

// gatedQueries counts a server's queries at its admission gate.
type gatedQueries struct {
	flight.Queries
	gate *admission
}

func (g *gatedQueries) Run(ctx context.Context, q flight.QueryCommand) (array.RecordReader, func() error, error) {
	done := g.gate.query()
	r, closeFn, err := g.Queries.Run(ctx, q)
	if err != nil {
		done()
		return nil, nil, err
	}
	return r, func() error {
		defer done()
		return closeFn()
	}, nil
}
