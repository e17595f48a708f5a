package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// The server's runs: wired into `lakehouse serve` here.
func init() { serverSetup = append(serverSetup, setupRuns) }

// stopWait bounds how long a stopping server waits for its interrupted
// runs to record their end.
const stopWait = time.Minute

func setupRuns(e *Env, ctx context.Context, h *serverHooks) error {
	lr := &localRuns{e: e, served: true, gate: newAdmission(), live: map[string]*liveRun{}, metrics: h.opts.Metrics,
		project: h.project}
	lr.markInterrupted()
	if m := h.opts.Metrics; m != nil && m.RunsByStatus == nil {
		m.RunsByStatus = lr.countByStatus
	}
	h.opts.Runs = lr
	h.runsIdle = lr.idle
	if h.opts.Queries != nil {
		h.opts.Queries = &gatedQueries{Queries: h.opts.Queries, gate: lr.gate}
	}
	// Runs that cannot finish within most of the shutdown timeout are
	// interrupted while their clients still listen, so that they hear how
	// their runs ended before the server cuts the calls.
	grace := h.shutdownTimeout * 3 / 4
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		lr.beginStop()
		select {
		case <-lr.idle():
		case <-time.After(grace):
		case <-stopped:
		}
		lr.interruptAll()
	}()
	h.onStop = append(h.onStop, func() {
		// The calls have ended; detached runs still get their grace.
		began := lr.beginStop()
		select {
		case <-lr.idle():
		case <-time.After(time.Until(began.Add(grace))):
		}
		close(stopped)
		lr.interruptAll()
		select {
		case <-lr.idle():
		case <-time.After(stopWait):
			e.Log.Warn("runs did not end in time", "after", stopWait)
		}
	})
	return nil
}

// beginStop refuses new runs, and returns when the stop began.
func (lr *localRuns) beginStop() time.Time {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if !lr.stopping {
		lr.stopping, lr.stopBegan = true, time.Now()
	}
	return lr.stopBegan
}

// interruptAll stops every run under way as interrupted.
func (lr *localRuns) interruptAll() {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	for _, l := range lr.live {
		l.cancel(pipeline.ErrInterrupted)
	}
}

// idle is closed once no run is under way.
func (lr *localRuns) idle() <-chan struct{} {
	c := make(chan struct{})
	go func() {
		lr.wg.Wait()
		close(c)
	}()
	return c
}

// markInterrupted records the runs a server left unfinished (it was
// killed, or the machine stopped) as interrupted: their targets are
// untouched, and no process will finish them.
func (lr *localRuns) markInterrupted() {
	runs, err := lr.store()
	if err != nil {
		return
	}
	recs, err := runs.List()
	if err != nil {
		return
	}
	for _, r := range recs {
		if r.Status != runrec.StatusKilled || r.Properties[propServed] == "" {
			continue
		}
		r.Status = runrec.StatusInterrupted
		r.Error = fmt.Sprintf("interrupted: its server (pid %d) stopped without finishing the run", r.PID)
		for _, m := range r.Models {
			if m.State == runrec.StateWaiting || m.State == runrec.StateStarting || m.State == runrec.StateRunning {
				m.State = runrec.StateSkipped
			}
		}
		if err := runs.Save(r); err != nil {
			lr.e.Log.Warn("cannot record an interrupted run", "run", r.ID, "err", err)
		}
	}
}

// countByStatus counts the runs of the data dir by status, for /metrics.
func (lr *localRuns) countByStatus() map[string]int64 {
	out := map[string]int64{}
	runs, err := lr.store()
	if err != nil {
		return out
	}
	recs, err := runs.List()
	if err != nil {
		return out
	}
	for _, r := range recs {
		out[string(r.Live())]++
	}
	return out
}
