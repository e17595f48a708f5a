package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// Environment variables of runs.
const (
	// envReaper=off stops run from starting its reaper process (tests that
	// run the CLI in-process).
	envReaper = "LAKEHOUSE_REAPER"
	// envTestAsCLI makes a test binary act as the lakehouse command (its
	// TestMain runs Main), for tests that signal a real process.
	envTestAsCLI = "LAKEHOUSE_TEST_AS_CLI"
	envShmDir    = "LAKEHOUSE_SHM_DIR"
	envLauncher  = "LAKEHOUSE_LAUNCHER"
	// envRunCache=off turns the result cache off (no reads, no writes).
	envRunCache = "LAKEHOUSE_RUN_CACHE"
	// envEnvCacheDir moves the package cache out of the data directory
	// (several data directories can share one).
	envEnvCacheDir = "LAKEHOUSE_ENVCACHE_DIR"
	// envEnvCacheDownloads keeps the wheels the package cache downloads,
	// so another cache installs them without downloading (tests).
	envEnvCacheDownloads = "LAKEHOUSE_ENVCACHE_DOWNLOADS"
)

func (e *Env) runsStore() (*runrec.Store, error) {
	return runrec.Open(filepath.Join(e.DataDir, "runs"))
}

// planParams are the plan's parameter values by name.
func planParams(p *planner.Plan) map[string]any {
	out := map[string]any{}
	for _, pv := range p.Parameters {
		out[pv.Name] = pv.Value
	}
	return out
}

// recordDryRun keeps a record of a dry run (best effort: a dry run that
// cannot be recorded still printed its plan). dir is the folder planned;
// shown is what the record names it (its absolute path if "").
func (e *Env) recordDryRun(p *planner.Plan, dir, shown string, ref catalog.Ref, f runFlags, user string) {
	runs, err := e.runsStore()
	if err != nil {
		return
	}
	now := time.Now().UTC()
	rec := &runrec.Record{ID: runrec.NewID(now), Project: p.Project, User: user, Target: ref.String(),
		StartCommit: p.Commit, EndCommit: p.Commit, Status: runrec.StatusPlanned, Params: planParams(p),
		Flags:   runrec.Flags{Strict: f.strict, NoCache: f.noCache, DryRun: true},
		Started: now, Ended: now, Warnings: []string{}}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	rec.ProjectDir = abs
	if shown != "" {
		rec.ProjectDir = shown
	}
	for _, n := range p.Models {
		rec.Models = append(rec.Models, &runrec.Model{Name: n.Name, Kind: n.Kind, Language: n.Language, State: runrec.StateWaiting})
	}
	for _, w := range p.Warnings {
		rec.Warnings = append(rec.Warnings, w.String())
	}
	if runs.Create(rec) != nil {
		return
	}
	rec.Files, rec.CodeHash, _ = runs.SnapshotCode(rec.ID, abs)
	runs.Save(rec)
}

// runJob is one run to execute.
type runJob struct {
	plan *planner.Plan
	// dir is the project folder the run ships; shownDir what its record
	// names it ("": dir's absolute path).
	dir, shownDir string
	target        catalog.BranchName
	flags         runFlags
	rerunOf       string
	user          string
	// id is the run's id (default: a new one).
	id string
	// admit holds each model back while the server gives way to queries.
	admit      func(ctx context.Context) error
	properties map[string]string
}

// runSink receives what a run reports as it goes: the live view of the
// CLI, or a server's stream to its client.
type runSink struct {
	// started: the run is recorded and its branch exists.
	started func(rec *runrec.Record)
	// event: the pipeline's progress (calls never overlap).
	event func(pipeline.Event)
	// notice: a line for the user's stderr.
	notice func(text string)
	// download: how far the package downloads have got (nil: not told).
	download func(envcache.DownloadProgress)
}

// runPipeline runs a plan into its target through the pipeline, with the
// launcher, package cache, reaper and heartbeat of this process. It
// returns the run's record (nil if the run could not start) and the
// pipeline's error.
func (e *Env) runPipeline(ctx context.Context, job runJob, sink runSink) (*runrec.Record, error) {
	plan, f := job.plan, job.flags
	svc, err := e.Service(ctx)
	if err != nil {
		return nil, err
	}
	scans, err := e.tableScans(ctx)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(job.dir)
	if err != nil {
		return nil, err
	}
	runs, err := e.runsStore()
	if err != nil {
		return nil, err
	}
	opts := pipeline.Options{
		Plan: plan, ProjectDir: abs, RecordDir: job.shownDir, Catalog: svc, Scans: scans, Runs: runs, Target: job.target,
		From: &catalog.Ref{Commit: plan.Commit}, User: job.user,
		Strict: f.strict, NoCache: f.noCache, CacheDir: filepath.Join(e.DataDir, "runcache"),
		KeepFailed: f.keepFailed, Params: planParams(plan), RerunOf: job.rerunOf,
		ShmDir: e.Getenv(envShmDir), Admit: job.admit, Properties: job.properties,
	}
	if strings.EqualFold(e.Getenv(envRunCache), "off") {
		opts.CacheDir = ""
	}
	if v := e.Getenv(runrec.EnvLogLimit); v != "" {
		n, err := duckdb.ParseSize(v)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "%s=%q: %v", runrec.EnvLogLimit, v, err)
		}
		opts.LogLimit = n
	}
	if f.preview {
		opts.PreviewRows = 5
	}
	// closers end what the run started (its launcher's containers, the
	// bytecode of the packages it installed) before the summary.
	var closers []func() error
	hasPython := false
	for _, n := range plan.Models {
		hasPython = hasPython || n.Python != nil
	}
	if hasPython {
		envCfg := e.envCacheConfig(e.defaultIndex(), nil)
		envCfg.Progress = sink.download
		envs, err := envcache.New(envCfg)
		if err != nil {
			return nil, err
		}
		defer envs.Close() // no-op after closeRun's
		closers = append(closers, envs.Close)
		opts.Envs = envs
		kind := f.launcher
		if kind == launchers.Auto && e.Getenv(envLauncher) != "" {
			kind = e.Getenv(envLauncher)
		}
		if e.fleetRuns != nil {
			// A control plane: its workers run the functions, each
			// with its own launcher.
			opts.Launcher = e.fleetRuns
			opts.ResolveOnly = true
			// The scheduler fits models to the workers' cores and
			// memory; the run bounds only what it keeps in flight: the
			// fleet's cores and this machine's (for SQL models).
			cores, memory := e.fleetCapacity(ctx)
			opts.Parallel = cores + runtime.NumCPU()
			if memory > 0 {
				opts.MemoryBudget = memory
			}
		} else {
			cfg := launchers.Config{Kind: kind, Isolation: f.isolation}
			cfg.Containerd.Socket = e.Getenv(launchers.SocketEnv)
			cfg.Containerd.StateDir = e.Getenv(launchers.StateDirEnv)
			l, info, err := launchers.Open(ctx, cfg)
			if err != nil {
				return nil, err
			}
			if !info.Isolated {
				sink.notice("warning: " + info.Isolation)
			}
			defer l.Close() // no-op after closeRun's
			closers = append(closers, l.Close)
			opts.Launcher = l
			e.Log.Debug("launcher", "launcher", info.Launcher, "reason", info.Reason)
		}
	}
	// The reaper starts before the run folder exists (it removes the
	// folder by the run's id), so no moment of the run leaves it behind.
	if opts.ShmDir == "" {
		opts.ShmDir = pipeline.DefaultShmDir()
	}
	opts.ID = job.id
	if opts.ID == "" {
		opts.ID = runrec.NewID(time.Now().UTC())
	}
	reaper := e.startReaper(opts.ShmDir, opts.ID, opts.Launcher)
	opts.Events = sink.event
	heartbeat := make(chan struct{})
	var beating sync.WaitGroup
	opts.OnStart = func(rec *runrec.Record, runDir string) {
		sink.started(rec)
		beating.Add(1)
		go func() {
			defer beating.Done()
			runHeartbeat(runs, rec.ID, heartbeat)
		}()
	}
	rec, err := pipeline.Run(ctx, opts)
	if e.fleetRuns != nil {
		e.fleetRuns.EndRun(opts.ID) // workers drop the run's intermediates
	}
	close(heartbeat)
	beating.Wait()
	closeRun(runs, rec, opts.ShmDir, opts.ID, closers)
	reaper.stop()
	return rec, err
}

// closeRun ends what a finished run leaves running before its summary is
// printed, so the command exits as soon as it says the run ended: the
// launcher (containers), the package cache (the bytecode of the packages
// the run installed is compiled now, and its time counts in the run's),
// and the run's folder in shmDir, removed here again in case a function
// process still wrote into it as the pipeline removed it (the reaper does
// this only for a run whose command was killed).
func closeRun(runs *runrec.Store, rec *runrec.Record, shmDir, id string, closers []func() error) {
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	removeRunFolders(shmDir, id)
	if rec == nil || rec.Ended.IsZero() || len(closers) == 0 {
		return
	}
	if now := time.Now().UTC(); now.Sub(rec.Ended) >= 50*time.Millisecond {
		rec.Ended = now
		rec.Duration = now.Sub(rec.Started).Seconds()
		runs.Save(rec)
	}
}

// runFailureOf is how a run that returned err is reported on the wire
// (nil if it did not fail).
func runFailureOf(rec *runrec.Record, err error) *flight.RunFailure {
	if err == nil {
		return nil
	}
	re := runFailure(rec, err)
	msg, hint := errdefs.Split(re)
	var rerr *runError
	if errors.As(re, &rerr) {
		msg, hint = rerr.msg, rerr.hint
	}
	f := &flight.RunFailure{Message: msg, Hint: hint, Class: "failed"}
	if errdefs.Is(re, errdefs.ErrConflict) {
		f.Class = "conflict"
	}
	var fe *function.FunctionError
	if errors.As(err, &fe) && fe.Traceback != "" {
		f.Model, f.Traceback = fe.Model, fe.Traceback
	}
	return f
}

// failureError rebuilds the error a failed run exits with, as runFailure
// made it: the same message, hint and exit code.
func failureError(f *flight.RunFailure) error {
	if f == nil {
		return nil
	}
	var cause error = errors.New(f.Message)
	if f.Class == "conflict" {
		cause = errdefs.New(errdefs.ErrConflict, "%s", f.Message)
	}
	return &runError{msg: f.Message, hint: f.Hint, err: cause}
}

// heartbeatEvery is how often a run marks its record alive: a run whose
// process is killed is listed with its duration up to the last mark.
const heartbeatEvery = 2 * time.Second

// runHeartbeat marks run id alive every heartbeatEvery until stop closes.
func runHeartbeat(runs *runrec.Store, id string, stop <-chan struct{}) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			runs.Heartbeat(id)
		}
	}
}

// runFailure is the error a failed run exits with: what failed and what
// to do next.
func runFailure(rec *runrec.Record, err error) error {
	if rec == nil {
		return err
	}
	var re *pipeline.RunError
	hint := fmt.Sprintf("%s is unchanged; see `lakehouse runs logs %s`", rec.Target, rec.ID)
	if rec.BranchKept {
		hint += fmt.Sprintf("; what the run wrote is on branch %s", rec.RunBranch)
	}
	switch {
	case errors.As(err, &re):
		return &runError{msg: err.Error(), hint: hint, err: err}
	case errors.Is(err, context.Canceled):
		return &runError{msg: "run " + rec.ID + " was interrupted", hint: hint, err: err}
	}
	return &runError{msg: "run " + rec.ID + " failed: " + err.Error(), hint: hint, err: err}
}

type runError struct {
	msg, hint string
	err       error
}

func (r *runError) Error() string {
	if r.hint == "" {
		return r.msg
	}
	return r.msg + "\n" + r.hint
}

// Hint implements errdefs.Hinted.
func (r *runError) Hint() string { return r.hint }

// Unwrap exposes only a conflict (a merge into a target that changed the
// same tables: exit 4); any other failure of a run exits 1, whatever
// class the cause has.
func (r *runError) Unwrap() error {
	if errdefs.Is(r.err, errdefs.ErrConflict) {
		return errdefs.ErrConflict
	}
	return nil
}

type reaper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
}

// startReaper starts a process that outlives this one if it is killed:
// when our end of its stdin closes without the word "done", it removes
// run id's folder from shmDir, our functions' scratch folders and the
// containers whose owner died. Functions run by the process launcher die
// with us (Pdeathsig, and their init's lifeline).
func (e *Env) startReaper(shmDir, id string, l function.Launcher) *reaper {
	if strings.EqualFold(e.Getenv(envReaper), "off") {
		return nil
	}
	exe, err := os.Executable()
	if err != nil || (strings.HasSuffix(exe, ".test") && os.Getenv(envTestAsCLI) == "") {
		return nil // tests run the CLI in-process; they clean up themselves
	}
	args := []string{"internal-reap", strconv.Itoa(os.Getpid()), shmDir, id}
	if l != nil && l.Name() == launchers.Containerd {
		sock := e.Getenv(launchers.SocketEnv)
		if sock == "" {
			sock = "default"
		}
		args = append(args, sock)
	}
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches us, not it
	cmd.Stderr = os.Stderr                                // what it could not clean up
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil
	}
	if err := cmd.Start(); err != nil {
		return nil
	}
	return &reaper{cmd: cmd, in: w}
}

// stop tells the reaper the run ended cleanly and waits for it.
func (r *reaper) stop() {
	if r == nil {
		return
	}
	io.WriteString(r.in, "done\n")
	r.in.Close()
	r.cmd.Wait()
}
