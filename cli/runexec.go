package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
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
// cannot be recorded still printed its plan).
func (e *Env) recordDryRun(p *planner.Plan, dir string, ref catalog.Ref, f runFlags) {
	runs, err := e.runsStore()
	if err != nil {
		return
	}
	prof, _ := e.Profile()
	now := time.Now().UTC()
	rec := &runrec.Record{ID: runrec.NewID(now), Project: p.Project, User: e.author(prof), Target: ref.String(),
		StartCommit: p.Commit, EndCommit: p.Commit, Status: runrec.StatusPlanned, Params: planParams(p),
		Flags:   runrec.Flags{Strict: f.strict, NoCache: f.noCache, DryRun: true},
		Started: now, Ended: now, Warnings: []string{}}
	if abs, err := filepath.Abs(dir); err == nil {
		rec.ProjectDir = abs
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
	rec.Files, rec.CodeHash, _ = runs.SnapshotCode(rec.ID, rec.ProjectDir)
	runs.Save(rec)
}

// execute runs a plan into target and reports it. It returns the run's
// record (nil if the run could not start).
func (e *Env) execute(ctx context.Context, plan *planner.Plan, dir string, target catalog.BranchName, f runFlags, rerunOf string) (*runrec.Record, error) {
	svc, err := e.Service(ctx)
	if err != nil {
		return nil, err
	}
	scans, err := e.tableScans(ctx)
	if err != nil {
		return nil, err
	}
	prof, err := e.Profile()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	runs, err := e.runsStore()
	if err != nil {
		return nil, err
	}
	opts := pipeline.Options{
		Plan: plan, ProjectDir: abs, Catalog: svc, Scans: scans, Runs: runs, Target: target,
		From: &catalog.Ref{Commit: plan.Commit}, User: e.author(prof),
		Strict: f.strict, NoCache: f.noCache, CacheDir: filepath.Join(e.DataDir, "runcache"),
		KeepFailed: f.keepFailed, Params: planParams(plan), RerunOf: rerunOf,
		ShmDir: e.Getenv(envShmDir),
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
	hasPython := false
	for _, n := range plan.Models {
		hasPython = hasPython || n.Python != nil
	}
	if hasPython {
		envs, err := e.envCache(nil)
		if err != nil {
			return nil, err
		}
		defer envs.Close()
		opts.Envs = envs
		kind := f.launcher
		if kind == launchers.Auto && e.Getenv(envLauncher) != "" {
			kind = e.Getenv(envLauncher)
		}
		cfg := launchers.Config{Kind: kind, Isolation: f.isolation}
		cfg.Containerd.Socket = e.Getenv(launchers.SocketEnv)
		cfg.Containerd.StateDir = e.Getenv(launchers.StateDirEnv)
		l, info, err := launchers.Open(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if !info.Isolated {
			fmt.Fprintf(e.Stderr, "warning: %s\n", info.Isolation)
		}
		defer l.Close()
		opts.Launcher = l
		e.Log.Debug("launcher", "launcher", info.Launcher, "reason", info.Reason)
	}
	// The reaper starts before the run folder exists (it removes the
	// folder by the run's id), so no moment of the run leaves it behind.
	if opts.ShmDir == "" {
		opts.ShmDir = pipeline.DefaultShmDir()
	}
	opts.ID = runrec.NewID(time.Now().UTC())
	reaper := e.startReaper(opts.ShmDir, opts.ID, opts.Launcher)
	view := newRunView(e, plan, target)
	opts.Events = view.event
	heartbeat := make(chan struct{})
	var beating sync.WaitGroup
	opts.OnStart = func(rec *runrec.Record, runDir string) {
		view.started(rec)
		beating.Add(1)
		go func() {
			defer beating.Done()
			runHeartbeat(runs, rec.ID, heartbeat)
		}()
	}
	rec, err := pipeline.Run(ctx, opts)
	close(heartbeat)
	beating.Wait()
	reaper.stop()
	view.finish(rec, err)
	if e.JSON() && rec != nil && !(f.recordLater && err == nil) {
		if werr := writeJSON(e.Stdout, rec); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return rec, runFailure(rec, err)
	}
	return rec, nil
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

func (r *runError) Error() string { return r.msg + "\n" + r.hint }

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
