package cli

import (
	"context"
	"strings"
	"syscall"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// The records of runs: read, followed, cancelled and deleted through
// flight.Runs, the same way embedded and on a server.

func (lr *localRuns) store() (*runrec.Store, error) { return lr.e.runsStore() }

// GetRun implements flight.Runs.
func (lr *localRuns) GetRun(ctx context.Context, id string) (*runrec.Record, error) {
	runs, err := lr.store()
	if err != nil {
		return nil, err
	}
	rec, err := runs.Get(id)
	if err != nil {
		return nil, err
	}
	rec.Status = rec.Live()
	return rec, nil
}

// ListRuns implements flight.Runs.
func (lr *localRuns) ListRuns(ctx context.Context, limit int) ([]*runrec.Record, error) {
	runs, err := lr.store()
	if err != nil {
		return nil, err
	}
	recs, err := runs.List()
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	for _, r := range recs {
		r.Status = r.Live()
	}
	return recs, nil
}

// followEvery is how often a followed log is read again.
const followEvery = 200 * time.Millisecond

// RunLogs implements flight.Runs.
func (lr *localRuns) RunLogs(ctx context.Context, b flight.RunLogsBody, send func(runrec.LogLine) error) error {
	runs, err := lr.store()
	if err != nil {
		return err
	}
	rec, err := runs.Get(b.ID)
	if err != nil {
		return err
	}
	model := b.Model
	if model != "" && rec.Model(model) == nil {
		names := make([]string, len(rec.Models))
		for i, m := range rec.Models {
			names[i] = m.Name
		}
		return errdefs.WithHint(errdefs.ErrNotFound, "its models: "+strings.Join(names, ", "),
			"run %s has no model %s", rec.ID, model)
	}
	// A failed function's traceback is in the record, not among the lines
	// it printed: it goes in where the model ended.
	var tracebacks []runrec.LogLine
	flush := func(until time.Time) error {
		for len(tracebacks) > 0 && (until.IsZero() || tracebacks[0].Time.Before(until)) {
			if err := send(tracebacks[0]); err != nil {
				return err
			}
			tracebacks = tracebacks[1:]
		}
		return nil
	}
	line := func(l runrec.LogLine) error {
		if model != "" && l.Model != model && l.Model != "" {
			return nil // lines of no model (the log limit's) are the run's
		}
		if err := flush(l.Time); err != nil {
			return err
		}
		return send(l)
	}
	running := b.Follow && rec.Live() == runrec.StatusRunning
	if !running {
		tracebacks = tracebackLogLines(rec, model)
	}
	var offset int64
	for {
		if offset, err = runs.ReadLogsFrom(rec.ID, offset, line); err != nil {
			return err
		}
		if !running {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followEvery):
		}
		cur, err := runs.Get(rec.ID)
		if err != nil {
			return err
		}
		if cur.Live() != runrec.StatusRunning {
			// The run closes its log just after its last save.
			time.Sleep(followEvery)
			tracebacks = tracebackLogLines(cur, model)
			running = false
		}
	}
	return flush(time.Time{})
}

// CancelRun implements flight.Runs. Embedded, it signals the process that
// runs the run (as Ctrl-C would); a server cancels its own run and waits
// (a while) for it to record its end.
func (lr *localRuns) CancelRun(ctx context.Context, id string) (*flight.CancelRunResult, error) {
	runs, err := lr.store()
	if err != nil {
		return nil, err
	}
	rec, err := runs.Get(id)
	if err != nil {
		return nil, err
	}
	out := &flight.CancelRunResult{ID: rec.ID, Status: "cancelling", Target: rec.Target}
	lr.mu.Lock()
	l := lr.live[rec.ID]
	lr.mu.Unlock()
	if l != nil {
		l.cancel(context.Canceled)
		select {
		case <-l.done:
		case <-ctx.Done():
		case <-time.After(30 * time.Second):
		}
		return out, nil
	}
	if rec.Live() != runrec.StatusRunning {
		return nil, errdefs.New(errdefs.ErrFailedPrecondition, "run %s is not running (%s)", rec.ID, rec.Live())
	}
	if rec.Properties[propServed] != "" {
		return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"cancel it through the server: lakehouse --addr HOST:PORT runs cancel "+rec.ID,
			"run %s runs in the lakehouse server (pid %d), not in a command this one can signal", rec.ID, rec.PID)
	}
	if err := rec.Signal(syscall.SIGINT); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteRun implements flight.Runs.
func (lr *localRuns) DeleteRun(ctx context.Context, id string) (*flight.DeleteRunResult, error) {
	runs, err := lr.store()
	if err != nil {
		return nil, err
	}
	rec, err := runs.Get(id)
	if err != nil {
		return nil, err
	}
	if rec.Live() == runrec.StatusRunning {
		return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition, "cancel it first: lakehouse runs cancel "+rec.ID, "run %s is running", rec.ID)
	}
	out := &flight.DeleteRunResult{Deleted: rec.ID}
	// Its kept run branch goes with it: nothing would prune it later.
	if rec.BranchKept && rec.RunBranch != "" {
		svc, err := lr.e.Service(ctx)
		if err != nil {
			return nil, err
		}
		err = svc.DeleteBranch(ctx, catalog.BranchName(rec.RunBranch))
		switch {
		case err == nil:
			out.DeletedBranch = rec.RunBranch
		case !errdefs.Is(err, errdefs.ErrNotFound):
			return nil, err
		}
	}
	if err := runs.Delete(rec.ID); err != nil {
		return nil, err
	}
	return out, nil
}
