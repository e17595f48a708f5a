package fleetlaunch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
)

// ExecutorConfig configures a worker's Executor.
type ExecutorConfig struct {
	// Launcher runs the functions on this worker.
	Launcher function.Launcher
	// Envs builds the environments tasks ask for.
	Envs *envcache.Cache
	// ShmDir is the worker's own folder in /dev/shm: code, inputs,
	// outputs and the tasks' folders live under it, one folder per run.
	ShmDir string
	// Intermediates is the registry the worker's data plane serves: the
	// outputs of the tasks it ran are registered there.
	Intermediates *flight.Intermediates
	// ControlAddr is the control plane's Flight address, for inputs it
	// holds itself (tickets of worker fleet.ControlName); Fetch configures
	// every fetch.
	ControlAddr string
	Fetch       flight.FetchOptions
	// Log receives a line per task (nil: discarded).
	Log *slog.Logger
}

// Validate reports a config that cannot work.
func (c *ExecutorConfig) Validate() error {
	if c.Launcher == nil || c.Envs == nil || c.ShmDir == "" || c.Intermediates == nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "fleetlaunch: an executor needs a launcher, a package cache, a /dev/shm folder and an intermediates registry")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Executor runs the tasks a worker is given.
type Executor struct {
	cfg     ExecutorConfig
	running atomic.Int64
	seq     atomic.Int64

	mu      sync.Mutex
	outputs map[outputKey]string // outputs held, by run and model
	code    map[string]*sync.Mutex
	// ended are the runs the control plane ended (Note), with when: a
	// task of one that comes late is refused, and one that was running
	// as the note came cleans up again as it ends (its fetches and output
	// came after the note's cleanup).
	ended map[string]time.Time
}

// endedKeep is how long an ended run is remembered.
const endedKeep = time.Hour

type outputKey struct{ run, model string }

// NewExecutor returns an Executor; the caller serves cfg.Intermediates.
func NewExecutor(cfg ExecutorConfig) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.ShmDir, 0o755); err != nil {
		return nil, err
	}
	return &Executor{cfg: cfg, outputs: map[outputKey]string{}, code: map[string]*sync.Mutex{}, ended: map[string]time.Time{}}, nil
}

// Running is how many tasks run now (a heartbeat's load).
func (e *Executor) Running() int { return int(e.running.Load()) }

// runPrefix starts the name of every folder of a run in ShmDir.
const runPrefix = "run-"

// CleanLeftovers removes the run folders a previous process of this
// worker left in shmDir (it was killed): nothing refers to them any more.
func CleanLeftovers(shmDir string) error {
	ents, err := os.ReadDir(shmDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, en := range ents {
		if strings.HasPrefix(en.Name(), runPrefix) {
			if err := os.RemoveAll(filepath.Join(shmDir, en.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func hashName(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:12])
}

func (e *Executor) runDir(run string) string {
	return filepath.Join(e.cfg.ShmDir, runPrefix+hashName(run))
}

// Note takes a control plane's broadcast: a run that ended has its
// intermediates forgotten and its files removed.
func (e *Executor) Note(note json.RawMessage) {
	var n Note
	if json.Unmarshal(note, &n) != nil || n.EndRun == "" {
		return
	}
	now := time.Now()
	e.mu.Lock()
	for run, at := range e.ended {
		if now.Sub(at) > endedKeep {
			delete(e.ended, run)
		}
	}
	e.ended[n.EndRun] = now
	e.mu.Unlock()
	e.endRun(n.EndRun)
}

// hasEnded reports whether the control plane ended run.
func (e *Executor) hasEnded(run string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.ended[run]
	return ok
}

// endRun forgets run's intermediates and removes its files.
func (e *Executor) endRun(run string) {
	e.cfg.Intermediates.ForgetRun(run)
	dir := e.runDir(run)
	e.mu.Lock()
	for k := range e.outputs {
		if k.run == run {
			delete(e.outputs, k)
		}
	}
	for k := range e.code {
		if strings.HasPrefix(k, dir+string(filepath.Separator)) {
			delete(e.code, k)
		}
	}
	e.mu.Unlock()
	// The intermediates fetched for the run become spares for the next
	// fetches to write over (those a task of the run still links are
	// removed).
	if ents, err := os.ReadDir(filepath.Join(dir, "in")); err == nil && e.cfg.Fetch.Spares != nil {
		for _, en := range ents {
			if strings.HasSuffix(en.Name(), ".arrow") {
				e.cfg.Fetch.Spares.Put(filepath.Join(dir, "in", en.Name()))
			}
		}
	}
	os.RemoveAll(dir)
}

var _ fleet.WorkHandler = (*Executor)(nil).Handle

// Handle runs one task (a fleet.WorkHandler).
func (e *Executor) Handle(ctx context.Context, raw json.RawMessage, emit func(json.RawMessage)) (json.RawMessage, error) {
	t, err := DecodeTask(raw)
	if err != nil {
		return nil, err
	}
	e.running.Add(1)
	defer e.running.Add(-1)
	res, err := e.run(ctx, t, emit)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return json.Marshal(res)
}

func (e *Executor) run(ctx context.Context, t *Task, emit func(json.RawMessage)) (TaskResult, error) {
	start := time.Now()
	if e.hasEnded(t.Run) {
		return errorResult(errdefs.New(errdefs.ErrFailedPrecondition, "run %s has ended", t.Run), false), nil
	}
	// Deferred first, so that it runs after the task's folder is gone.
	defer func() {
		if e.hasEnded(t.Run) {
			e.endRun(t.Run)
		}
	}()
	runDir := e.runDir(t.Run)
	dir := filepath.Join(runDir, fmt.Sprintf("t%d", e.seq.Add(1)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return TaskResult{}, err
	}
	defer os.RemoveAll(dir)
	codeDir, err := e.unpack(t, runDir)
	if err != nil {
		return errorResult(fmt.Errorf("code of %s: %w", t.Model, err), false), nil
	}
	env, err := e.cfg.Envs.Environment(ctx, t.Env)
	if err != nil {
		if ctx.Err() != nil {
			return TaskResult{}, ctx.Err()
		}
		return errorResult(fmt.Errorf("environment of %s (python %s, %s): %w", t.Model, t.Env.Python, strings.Join(t.Env.Requirements, " "), err), false), nil
	}
	inv := function.Invocation{
		Model: t.Model, Run: t.Run, Env: env, ModulePath: filepath.Join(codeDir, filepath.FromSlash(t.Module)),
		Function: t.Function, Params: t.Params, DataDir: dir, Memory: t.Memory,
		Timeout: time.Duration(t.TimeoutMillis) * time.Millisecond, InternetAccess: t.InternetAccess, PreviewRows: t.PreviewRows,
		Log: func(l function.LogLine) { send(emit, Event{Log: &l}) },
		OnStep: func(i int, rows int64) {
			ev := Event{Step: i, Rows: rows}
			if b, err := os.ReadFile(function.PreviewPath(dir, i-1)); err == nil && len(b) <= maxPreviewBytes {
				ev.Preview = b
			}
			send(emit, ev)
		},
	}
	if t.Output {
		inv.Output = filepath.Join(dir, "output.arrow")
	}
	if inv.Inputs, err = e.inputs(ctx, t, runDir, dir, "", t.Inputs); err != nil {
		return e.inputFailed(ctx, t, err)
	}
	for i, s := range t.Then {
		ins, err := e.inputs(ctx, t, runDir, dir, fmt.Sprintf("s%d-", i+1), s.Inputs)
		if err != nil {
			return e.inputFailed(ctx, t, err)
		}
		inv.Then = append(inv.Then, function.Step{Model: s.Model, ModulePath: filepath.Join(codeDir, filepath.FromSlash(s.Module)),
			Function: s.Function, Chain: s.Chain, ChainColumns: s.ChainColumns, Inputs: ins, Params: s.Params})
	}
	res, err := e.cfg.Launcher.Launch(ctx, inv)
	if err != nil {
		var fe *function.FunctionError
		switch {
		case errors.As(err, &fe):
			return TaskResult{Failure: wireFailure(fe)}, nil
		case ctx.Err() != nil:
			return TaskResult{}, ctx.Err()
		}
		return errorResult(fmt.Errorf("starting %s: %w", t.Model, err), false), nil
	}
	d := &Done{Rows: res.Rows, Expectation: res.Expectation, StepRows: res.StepRows, DurationMillis: time.Since(start).Milliseconds()}
	if res.Output != "" && t.Output {
		if err := e.keep(t, runDir, res.Output, d); err != nil {
			return TaskResult{}, err
		}
	}
	e.cfg.Log.Debug("task done", "run", t.Run, "model", t.Model, "rows", d.Rows, "seconds", time.Since(start).Seconds())
	return TaskResult{Done: d}, nil
}

// maxPreviewBytes bounds a preview sent back with a step.
const maxPreviewBytes = 1 << 20

func send(emit func(json.RawMessage), ev Event) {
	if b, err := json.Marshal(ev); err == nil {
		emit(b)
	}
}

func (e *Executor) inputFailed(ctx context.Context, t *Task, err error) (TaskResult, error) {
	if ctx.Err() != nil {
		return TaskResult{}, ctx.Err()
	}
	return errorResult(fmt.Errorf("inputs of %s: %w", t.Model, err), true), nil
}

// keep moves a task's output out of its folder, for the run's later
// tasks and the control plane, and registers it for handoff.
func (e *Executor) keep(t *Task, runDir, output string, d *Done) error {
	outDir := filepath.Join(runDir, "out")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	model := t.lastModel()
	p := filepath.Join(outDir, hashName(model)+".arrow")
	if err := os.Rename(output, p); err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	d.Output, d.OutputBytes = true, st.Size()
	e.mu.Lock()
	e.outputs[outputKey{t.Run, model}] = p
	e.mu.Unlock()
	e.cfg.Intermediates.Register(t.Run, model, p)
	return nil
}

// inputs links a task's input files into its folder dir: outputs this
// worker holds, or intermediates fetched (once per run) into runDir/in.
func (e *Executor) inputs(ctx context.Context, t *Task, runDir, dir, prefix string, ins []TaskInput) ([]function.Input, error) {
	var out []function.Input
	for i, in := range ins {
		var src string
		if in.Local {
			e.mu.Lock()
			p, ok := e.outputs[outputKey{t.Run, in.Model}]
			e.mu.Unlock()
			if !ok {
				return nil, errdefs.New(errdefs.ErrNotFound, "this worker holds no output of %s", in.Model)
			}
			src = p
		} else {
			// Another worker's data plane, else the control plane's
			// (DoGet, with this worker's key).
			addr := flight.DataLocation(in.Addr)
			if in.Holder == fleet.ControlName {
				addr = e.cfg.ControlAddr
			}
			if addr == "" {
				return nil, errdefs.New(errdefs.ErrInvalidArgument, "no address to fetch %s from %s", in.Model, in.Holder)
			}
			fetched := filepath.Join(runDir, "in")
			if err := os.MkdirAll(fetched, 0o755); err != nil {
				return nil, err
			}
			src = filepath.Join(fetched, hashName(in.Holder, in.Model)+".arrow")
			if err := flight.FetchIntermediate(ctx, addr, in.Ticket, src, e.cfg.Fetch); err != nil {
				return nil, fmt.Errorf("fetching %s from %s: %w", in.Model, in.Holder, err)
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("%sin%d-%s.arrow", prefix, i, hashName(in.Arg)))
		if err := os.Link(src, p); err != nil {
			return nil, fmt.Errorf("linking input %s: %w", in.Model, err)
		}
		out = append(out, function.Input{Arg: in.Arg, Path: p, Columns: in.Columns})
	}
	return out, nil
}

// unpack returns the folder of the task's code, unpacked once per run.
func (e *Executor) unpack(t *Task, runDir string) (string, error) {
	dir := filepath.Join(runDir, "code-"+t.Code.Hash[:min(len(t.Code.Hash), 24)])
	e.mu.Lock()
	mu := e.code[dir]
	if mu == nil {
		mu = &sync.Mutex{}
		e.code[dir] = mu
	}
	e.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return "", err
	}
	return dir, unpackCode(t.Code, dir)
}
