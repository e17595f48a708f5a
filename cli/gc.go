package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) gcCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "gc",
		Usage: "delete warehouse files that no branch or tag can reach",
		Description: "Deletes the data, manifest and metadata files that no commit reachable from a\n" +
			"branch or tag references and that are older than the grace period: what killed\n" +
			"or failed imports and runs left, and the files of dropped branches and tables.\n" +
			"Files shared between tables, or by a table dropped on one branch and alive on\n" +
			"another, stay while anything references them; so do the files of imports and\n" +
			"runs still in flight, and the commits they started from.\n\n" +
			"First it deletes the run branches of failed runs older than\n" +
			"--failed-runs-retention. With --expire-commits, history older than the\n" +
			"retention on branches goes too (every head and tagged commit stays, and time\n" +
			"travel to any time within the retention still reads). It prints each file it\n" +
			"deletes, or with --dry-run would delete, with its size.",
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print what would be deleted, delete nothing"},
			&urfave.StringFlag{Name: "grace", Value: "24h", Usage: "keep files modified less than this long ago (at least 1m)"},
			&urfave.StringFlag{Name: "failed-runs-retention", Value: "7d", Usage: "delete run branches of failed runs older than this (0: all)"},
			&urfave.StringFlag{Name: "expire-commits", Usage: "let history older than this go (e.g. 30d); default: keep all history"},
		},
		Action: e.gc,
	}
}

// gcer is the part of the embedded catalog.Local that gc uses.
type gcer interface {
	GC(ctx context.Context, opts catalog.GCOptions) (*catalog.GCResult, error)
}

// warehouseFiles is the part of the table format that gc uses: what table
// states reference, and the files of the warehouse.
type warehouseFiles interface {
	catalog.TableFiles
	Objects() catalog.Objects
}

// minGrace bounds --grace from below: an import's files must be older
// than that before anything can take them for leftovers.
const minGrace, minGraceText = time.Minute, "1m"

type gcFlags struct {
	dryRun                  bool
	grace, failedKeep, keep time.Duration
}

// gcFlagsOf checks a gc request (the flags, or a client's body): a bad
// one is errdefs.ErrInvalidArgument naming the flag.
func gcFlagsOf(b flight.GCBody) (gcFlags, error) {
	f := gcFlags{dryRun: b.DryRun}
	bad := func(format string, args ...any) (gcFlags, error) {
		return f, errdefs.WithHint(errdefs.ErrInvalidArgument, "run `lakehouse gc --help` for usage", format, args...)
	}
	grace, failed := cmp.Or(b.Grace, "24h"), cmp.Or(b.FailedRunsRetention, "7d")
	var err error
	if f.grace, err = parseRetention(grace); err != nil {
		return bad("invalid --grace %q: use a duration such as 24h, 2d or 30m", grace)
	}
	if f.grace < minGrace {
		return bad("--grace %s is too short: files being written need at least %s to be committed", grace, minGraceText)
	}
	if f.failedKeep, err = parseRetention(failed); err != nil {
		return bad("invalid --failed-runs-retention %q: use a duration such as 7d, 36h or 0", failed)
	}
	if s := b.ExpireCommits; s != "" {
		if f.keep, err = parseRetention(s); err != nil || f.keep <= 0 {
			return bad("invalid --expire-commits %q: use a positive duration such as 30d or 720h", s)
		}
	}
	return f, nil
}

func (e *Env) gc(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	b := flight.GCBody{DryRun: c.Bool("dry-run"), Grace: c.String("grace"),
		FailedRunsRetention: c.String("failed-runs-retention"), ExpireCommits: c.String("expire-commits")}
	if c.IsSet("expire-commits") && b.ExpireCommits == "" {
		return usageError(c, "invalid --expire-commits \"\": use a positive duration such as 30d or 720h")
	}
	if _, err := gcFlagsOf(b); err != nil {
		return err
	}
	g, err := e.gcService()
	if err != nil {
		return err
	}
	v, gcErr := g.GC(c.Context, b)
	if v == nil {
		return gcErr
	}
	if err := e.emit(v, func(w io.Writer) error { return writeGC(w, v) }); err != nil {
		return err
	}
	return gcErr
}

// gcService is what gc talks to: the server when the commands talk to
// one, else the data dir's catalog in this process.
func (e *Env) gcService() (flight.GarbageCollector, error) {
	c, err := e.remoteClient()
	if err != nil {
		return nil, err
	}
	if c != nil {
		return c, nil
	}
	return localGC{e: e}, nil
}

// The server's gc: wired into `lakehouse serve` here.
func init() {
	serverSetup = append(serverSetup, func(e *Env, _ context.Context, h *serverHooks) error {
		h.opts.GC = localGC{e: e}
		return nil
	})
}

// localGC collects the garbage of this process's data dir: for the
// embedded commands, and for a server's clients.
type localGC struct{ e *Env }

var _ flight.GarbageCollector = localGC{}

// GC implements flight.GarbageCollector.
func (g localGC) GC(ctx context.Context, b flight.GCBody) (*flight.GCReport, error) {
	e := g.e
	f, err := gcFlagsOf(b)
	if err != nil {
		return nil, err
	}
	svc, err := e.Service(ctx)
	if err != nil {
		return nil, err
	}
	gc, gok := svc.(gcer)
	files, fok := e.scans.(warehouseFiles)
	if !gok || !fok {
		return nil, errdefs.New(errdefs.ErrFailedPrecondition, "this catalog cannot collect garbage from here")
	}
	runs, err := e.runsStore()
	if err != nil {
		return nil, err
	}
	recs, err := runs.List()
	if err != nil {
		return nil, err
	}
	opts := catalog.GCOptions{Objects: files.Objects(), Tables: files, DryRun: f.dryRun, Grace: f.grace, ExpireCommits: f.keep}
	if e.Now != nil {
		opts.Now = e.Now
	}
	for _, r := range recs {
		if r.Live() == runrec.StatusRunning {
			opts.Holds = append(opts.Holds, runHold(r))
		}
	}
	v := &flight.GCReport{Warehouse: e.WarehouseURI(), ExpiredRuns: []flight.ExpiredRun{}}
	for _, r := range pipeline.ExpiredRunBranches(recs, time.Now().Add(-f.failedKeep)) {
		if f.dryRun {
			opts.IgnoreBranches = append(opts.IgnoreBranches, catalog.BranchName(r.RunBranch))
		} else if err := pipeline.DropRunBranch(ctx, svc, runs, r); err != nil {
			return nil, fmt.Errorf("deleting run branch %s of failed run %s: %w", r.RunBranch, r.ID, err)
		}
		v.ExpiredRuns = append(v.ExpiredRuns, flight.ExpiredRun{Run: r.ID, Branch: r.RunBranch})
	}
	res, err := gc.GC(ctx, opts)
	if res == nil {
		return nil, err
	}
	v.GCResult = res
	return v, err
}

// runHold is what a running run holds: the commits it reads and writes
// from, and the files written since it started.
func runHold(r *runrec.Record) catalog.Hold {
	h := catalog.Hold{What: "run " + r.ID, Since: r.Started}
	for _, id := range []string{r.StartCommit, r.BaseCommit} {
		if id != "" {
			h.Commits = append(h.Commits, catalog.CommitID(id))
		}
	}
	return h
}

func writeGC(w io.Writer, v *flight.GCReport) error {
	verb := "deleted"
	if v.DryRun {
		verb = "would delete"
	}
	for _, r := range v.ExpiredRuns {
		if _, err := fmt.Fprintf(w, "%s run branch %s (failed run %s)\n", verb, r.Branch, r.Run); err != nil {
			return err
		}
	}
	for _, f := range v.Deleted {
		if _, err := fmt.Fprintf(w, "%s %10s  %s\n", verb, humanBytes(f.Size), f.Key); err != nil {
			return err
		}
	}
	for _, k := range v.Uploads {
		if _, err := fmt.Fprintf(w, "%s unfinished upload of %s\n", map[bool]string{true: "would abort", false: "aborted"}[v.DryRun], k); err != nil {
			return err
		}
	}
	if !v.Cutoff.IsZero() {
		verb := map[bool]string{true: "would expire", false: "expired"}[v.DryRun]
		if _, err := fmt.Fprintf(w, "%s %s made before %s (the history past --expire-commits leaves the log)\n",
			verb, plural(int64(v.ExpiredCommits), "commit", "commits"), formatTime(v.Cutoff)); err != nil {
			return err
		}
	}
	for _, m := range v.Missing {
		if _, err := fmt.Fprintf(w, "missing: %s (referenced by a kept table state; see `lakehouse doctor`)\n", m); err != nil {
			return err
		}
	}
	held := ""
	if v.Writers > 0 {
		held = fmt.Sprintf("; %s in flight", plural(int64(v.Writers), "writer", "writers"))
	}
	_, err := fmt.Fprintf(w, "%s %s (%s) in %s; kept %s (%s): %d referenced by %s of %s, %d recent%s\n",
		verb, plural(int64(len(v.Deleted)), "file", "files"), humanBytes(v.DeletedBytes), v.Warehouse,
		plural(int64(v.Referenced+v.Recent), "file", "files"), humanBytes(v.KeptBytes), v.Referenced,
		plural(int64(v.States), "table state", "table states"), plural(int64(v.Commits), "commit", "commits"), v.Recent, held)
	return err
}
