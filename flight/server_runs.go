package flight

import (
	"context"
	"fmt"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// Runs runs pipelines for the server's run actions. The CLI's embedded
// runs implement it too, and so does Client: the run commands talk to
// either one the same way.
type Runs interface {
	// Run plans the project of b and runs it, sending its events in
	// order: a dry run sends one EventPlan; a run sends EventStarted, its
	// progress and EventFinished (a failed run is an EventFinished with
	// an Error, not an error). With b.Detach it returns after
	// EventStarted while the run goes on. It returns an error, and runs
	// nothing, for a project that does not plan (errdefs.ErrInvalidArgument
	// with every problem) or a bad body.
	Run(ctx context.Context, b RunBody, send func(*RunEvent) error) error
	// Rerun runs a recorded run's code again on its start commit, sending
	// events as Run does. It returns errdefs.ErrNotFound for an unknown run.
	Rerun(ctx context.Context, b RerunBody, send func(*RunEvent) error) error
	// GetRun returns a run's record, its status as of now (a run whose
	// process died is killed). errdefs.ErrNotFound if there is none.
	GetRun(ctx context.Context, id string) (*runrec.Record, error)
	// ListRuns returns the records newest first, at most limit (0: all).
	ListRuns(ctx context.Context, limit int) ([]*runrec.Record, error)
	// RunLogs sends a run's log lines in order (a failed function's
	// traceback where its model ended), then with b.Follow new lines
	// until the run ends. errdefs.ErrNotFound for an unknown run or model.
	RunLogs(ctx context.Context, b RunLogsBody, send func(runrec.LogLine) error) error
	// CancelRun stops a running run; its target is untouched.
	// errdefs.ErrFailedPrecondition if it is not running.
	CancelRun(ctx context.Context, id string) (*CancelRunResult, error)
	// DeleteRun deletes a run's record, logs and code, and its kept run
	// branch. errdefs.ErrFailedPrecondition while it runs.
	DeleteRun(ctx context.Context, id string) (*DeleteRunResult, error)
}

// runScope is the branches a run writes: its target, merged from a run
// branch of the caller's own (as a merge into main is).
type runScope []string

func (r runScope) Branches() []string { return r }

// authorizeRun checks that the caller may run into target.
func (s *Server) authorizeRun(ctx context.Context, target string) error {
	return s.authorize(ctx, PermMerge, runScope{target, PrincipalFrom(ctx).User + ".run"})
}

// runUser is the user a run is recorded as: the key's with keys, else the
// one the client names.
func (s *Server) runUser(ctx context.Context, named string) string {
	if s.opts.Auth != nil {
		return PrincipalFrom(ctx).User
	}
	return named
}

// registerRuns adds the run actions.
// ProjectLimiter is implemented by Runs that bound the projects sent
// with runs: MaxProjectBytes is the most a project's gzip'd tar may hold.
type ProjectLimiter interface {
	MaxProjectBytes() int64
}

// runBodySlack is what a run request holds besides its project: the ref,
// parameters, flags and the JSON around them.
const runBodySlack = 1 << 20

// checkRunBodySize refuses a run request too large to carry a project
// within the server's limit (ProjectLimiter) before it is decoded: the
// project travels in base64, 4 bytes for 3, and decoding a body of
// hundreds of MiB to find that out costs as much again in memory.
func (s *Server) checkRunBodySize(n int) error {
	pl, ok := s.opts.Runs.(ProjectLimiter)
	if !ok {
		return nil
	}
	limit := pl.MaxProjectBytes()
	if limit <= 0 || int64(n) <= (limit+2)/3*4+runBodySlack {
		return nil
	}
	mib := func(n int64) string {
		switch {
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	}
	return errdefs.WithHint(errdefs.ErrInvalidArgument,
		"keep data files and environments out of the project folder (the server's limits are `serve --max-project-bytes` and `--max-project-unpacked`)",
		"the project sent with the run is refused: the request is %s, more than a project within the limit of %s makes",
		mib(int64(n)), mib(limit))
}

func (s *Server) registerRuns() {
	runs := func() (Runs, error) {
		if s.opts.Runs == nil {
			return nil, errorf(errdefs.ErrFailedPrecondition, "this server runs no pipelines")
		}
		return s.opts.Runs, nil
	}
	s.register(ActionRun, "plan and run a pipeline project sent as a gzip'd tar; streams run events", func(ctx context.Context, body []byte, send func(any) error) error {
		if err := s.checkRunBodySize(len(body)); err != nil {
			return err
		}
		var b RunBody
		if err := decode(ActionRun, body, &b); err != nil {
			return err
		}
		rs, err := runs()
		if err != nil {
			return err
		}
		if !b.DryRun {
			ref, err := catalog.ParseRef(b.Ref)
			if err != nil {
				return err
			}
			if err := s.authorizeRun(ctx, ref.Name); err != nil {
				return err
			}
		}
		b.User = s.runUser(ctx, b.User)
		return rs.Run(ctx, b, func(ev *RunEvent) error { return send(ev) })
	})
	s.register(ActionRerun, "run a recorded run's code again on its start commit; streams run events", func(ctx context.Context, body []byte, send func(any) error) error {
		var b RerunBody
		if err := decode(ActionRerun, body, &b); err != nil {
			return err
		}
		rs, err := runs()
		if err != nil {
			return err
		}
		target := b.Ref
		if target == "" {
			orig, err := rs.GetRun(ctx, b.RunID)
			if err != nil {
				return err
			}
			target = orig.Target
		}
		if err := s.authorizeRun(ctx, target); err != nil {
			return err
		}
		b.User = s.runUser(ctx, b.User)
		return rs.Rerun(ctx, b, func(ev *RunEvent) error { return send(ev) })
	})
	unary(s, ActionGetRun, "a run's record", PermRead, func(ctx context.Context, b RunIDBody) (any, error) {
		rs, err := runs()
		if err != nil {
			return nil, err
		}
		return rs.GetRun(ctx, b.ID)
	})
	unary(s, ActionListRuns, "run records, newest first", PermRead, func(ctx context.Context, b ListRunsBody) (any, error) {
		rs, err := runs()
		if err != nil {
			return nil, err
		}
		recs, err := rs.ListRuns(ctx, b.Limit)
		if recs == nil {
			recs = []*runrec.Record{}
		}
		return recs, err
	})
	s.register(ActionRunLogs, "a run's log lines; with follow, new ones until the run ends", func(ctx context.Context, body []byte, send func(any) error) error {
		var b RunLogsBody
		if err := decode(ActionRunLogs, body, &b); err != nil {
			return err
		}
		rs, err := runs()
		if err != nil {
			return err
		}
		return rs.RunLogs(ctx, b, func(l runrec.LogLine) error { return send(l) })
	})
	// Cancelling or deleting a run writes where the run writes.
	ownRun := func(ctx context.Context, rs Runs, id string) error {
		rec, err := rs.GetRun(ctx, id)
		if err != nil {
			return err
		}
		if s.opts.Auth != nil && PrincipalFrom(ctx).Role != RoleAdmin && rec.User != PrincipalFrom(ctx).User {
			return errdefs.WithHint(errdefs.ErrPermissionDenied, "ask its user or an admin",
				"run %s is %s's", rec.ID, strings.TrimSpace(rec.User))
		}
		return s.authorizeRun(ctx, rec.Target)
	}
	unary(s, ActionCancelRun, "stop a running run; its target is untouched", PermRead, func(ctx context.Context, b RunIDBody) (any, error) {
		rs, err := runs()
		if err != nil {
			return nil, err
		}
		if err := ownRun(ctx, rs, b.ID); err != nil {
			return nil, err
		}
		return rs.CancelRun(ctx, b.ID)
	})
	unary(s, ActionDeleteRun, "delete a run's record, logs, code and kept run branch", PermRead, func(ctx context.Context, b RunIDBody) (any, error) {
		rs, err := runs()
		if err != nil {
			return nil, err
		}
		if err := ownRun(ctx, rs, b.ID); err != nil {
			return nil, err
		}
		return rs.DeleteRun(ctx, b.ID)
	})
}
