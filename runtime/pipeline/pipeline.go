// Package pipeline runs a planned pipeline: every model of a planner.Plan
// in topological order (independent ones in parallel), Python models
// through a function.Launcher in environments from envcache, SQL models in a
// fresh DuckDB fed from Arrow. Data moves as Arrow IPC files in one
// per-run folder under /dev/shm: a catalog input is scanned once into a
// file, a model's output is written once, and every reader memory-maps it.
//
// A run is a transaction. It opens a run branch from the target branch,
// writes materialized models there, and only when every model and (with
// Strict) every expectation succeeded merges the run branch into the
// target in one commit carrying the run id. On any failure, including a
// cancelled context, the target is untouched; the run branch is kept for
// inspection and pruned once KeepFailed has passed.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// Options configure a run.
type Options struct {
	// Plan is what runs: its models, Python models of a chain in
	// Plan.Chains fused into one interpreter (see chain.go).
	Plan *planner.Plan
	// ProjectDir is the project folder the plan was built from.
	ProjectDir string
	Catalog    catalog.Service
	Scans      catalog.TableScanner // plans the scans of the tables read (the CLI wires catalog/iceberg's Format)
	Envs       *envcache.Cache
	// ResolveOnly locks each environment without installing it here: the
	// launcher runs functions elsewhere (on a fleet's workers), where
	// they are installed at the versions locked.
	ResolveOnly bool
	// Launcher runs Python models (nil: a plan with Python models fails).
	Launcher function.Launcher
	Runs     *runrec.Store
	// Target is the branch the run writes to.
	Target catalog.BranchName
	// From is the commit the run reads catalog tables at and its run
	// branch starts from (default: Target's head): the commit it was
	// planned at, or for a rerun the original run's start commit. A
	// rerun's branch starts at Target's head instead, so its outputs land
	// on the target's current tables (a target that moved on, its outputs
	// included, takes them without a merge conflict).
	From *catalog.Ref
	// User names the run branch (<user>.run-<id>) and authors commits.
	User string
	// ID is the run id (default: a new one).
	ID      string
	Strict  bool
	NoCache bool
	// PreviewRows > 0 sends the first rows of each output as an event.
	PreviewRows int
	// ShmDir holds the run folder (default /dev/shm, else os.TempDir()).
	ShmDir string
	// LogLimit caps the run's stored log (logs.jsonl) in bytes: 0 means
	// runrec.DefaultLogLimit (100 MB), below 0 none. Lines past it are
	// counted and dropped from the log (Events still carries them).
	LogLimit int64
	// CacheDir holds the result cache ("" disables it).
	CacheDir string
	// CacheMaxBytes bounds the cache (default 4 GiB); CacheMaxEntry bounds
	// one output kept in it (default 256 MiB: copying larger outputs to
	// disk costs about what recomputing them does).
	CacheMaxBytes int64
	CacheMaxEntry int64
	// KeepFailed is how long failed run branches stay (default 7 days;
	// negative: a failed run deletes its branch at once).
	KeepFailed time.Duration
	// Parallel bounds models running at once (default: the number of CPUs).
	Parallel int
	// MemoryBudget bounds the sum of running models' memory limits
	// (default: 80% of available memory).
	MemoryBudget int64
	// Params are the parameter values, for the record.
	Params  map[string]any
	RerunOf string
	// Events receives progress (nil: none). Calls come from several
	// goroutines, never at once.
	Events func(Event)
	// OnStart is called once the run record and run folder exist, with the
	// folder.
	OnStart func(rec *runrec.Record, runDir string)
	// Admit, if set, is called before each model starts; the model waits
	// until it returns (a server holds runs back this way while
	// interactive queries run). An error skips the model.
	Admit func(ctx context.Context) error
	// RecordDir is the project folder as the record names it (default
	// ProjectDir): a server runs a copy of the folder a client sent.
	RecordDir string
	// Properties go into the record.
	Properties map[string]string
}

// ErrInterrupted, as the cause of a cancelled context, records the run as
// interrupted rather than cancelled: its server stopped. It is a
// context.Canceled.
var ErrInterrupted error = interruptedError{}

type interruptedError struct{}

func (interruptedError) Error() string        { return "interrupted: the server stopped" }
func (interruptedError) Is(target error) bool { return target == context.Canceled }

// Event is progress of a run.
type Event struct {
	Kind  EventKind
	Model string
	// State is the model's new state (EventState).
	State   string
	Elapsed time.Duration
	// Line is a function's output line (EventLog).
	Line function.LogLine
	// Text is a preview (EventPreview) or a message (EventMessage, EventWarning).
	Text string
	Rows int64
}

// EventKind says what an Event carries.
type EventKind int

const (
	EventState EventKind = iota
	EventLog
	EventPreview
	EventMessage
	EventWarning
)

// ExpectationError is a failed expectation under Strict.
type ExpectationError struct{ Model string }

func (e *ExpectationError) Error() string {
	return fmt.Sprintf("expectation %s failed (--strict makes failed expectations fail the run)", e.Model)
}

// RunError is a failed run: the model that failed (if any) and why. The
// target branch is unchanged.
type RunError struct {
	ID        string
	Model     string
	Err       error
	RunBranch string
}

func (e *RunError) Error() string {
	msg := "run " + e.ID + " failed"
	if e.Model != "" {
		msg += " in " + e.Model
	}
	msg += ": " + e.Err.Error()
	return msg
}

func (e *RunError) Unwrap() error { return e.Err }

type run struct {
	opts   Options
	rec    *runrec.Record
	logs   *runrec.Logs
	dir    string
	branch catalog.BranchName
	start  *catalog.Commit // tables are read at start
	base   *catalog.Commit // the run branch starts at base (a rerun: Target's head)

	evMu sync.Mutex // serializes Events and record saves
	nsMu sync.Mutex

	scans   *scanner
	envs    map[string]*envFuture
	envWG   sync.WaitGroup // environment assemblies under way
	nodes   map[string]*node
	slots   chan struct{}
	memory  *budget
	cache   *resultCache
	cacheWG sync.WaitGroup
	outputs map[string]bool    // models whose output someone reads
	chains  map[string][]*node // fused chains by their first model
	fused   map[string]bool    // models run by a chain's first model
	// support hashes the project files Python models may import.
	supportOnce sync.Once
	support     string
}

type node struct {
	n    *planner.Node
	rec  *runrec.Model
	done chan struct{}
	// output is the model's Arrow IPC file (after done, if ok).
	output string
	ok     bool
	key    string // result cache key ("" when not cacheable)
	began  time.Time
}

// Run executes the plan. It returns the run record (also when the run
// failed: then with a *RunError, or the context's error when cancelled).
func Run(ctx context.Context, opts Options) (*runrec.Record, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	p := opts.Plan
	r := &run{opts: opts, nodes: map[string]*node{}, outputs: map[string]bool{}}
	now := time.Now().UTC()
	if opts.ID == "" {
		opts.ID = runrec.NewID(now)
		r.opts.ID = opts.ID
	}
	r.rec = &runrec.Record{
		ID: opts.ID, Project: p.Project, User: opts.User, Target: string(opts.Target),
		Status: runrec.StatusRunning, Params: opts.Params, ProjectDir: opts.ProjectDir,
		Flags:   runrec.Flags{Strict: opts.Strict, NoCache: opts.NoCache, NoFuse: p.NoFuse, KeepFailed: max(opts.KeepFailed, 0).String()},
		RerunOf: opts.RerunOf, Started: now, Warnings: []string{}, Properties: opts.Properties,
	}
	if opts.RecordDir != "" {
		r.rec.ProjectDir = opts.RecordDir
	}
	if opts.Launcher != nil {
		r.rec.Launcher = opts.Launcher.Name()
	}
	for _, w := range p.Warnings {
		r.rec.Warnings = append(r.rec.Warnings, w.String())
	}
	for _, n := range p.Models {
		m := &runrec.Model{Name: n.Name, Kind: n.Kind, Language: n.Language, State: runrec.StateWaiting}
		r.rec.Models = append(r.rec.Models, m)
		r.nodes[n.Name] = &node{n: n, rec: m, done: make(chan struct{})}
		for _, in := range n.Inputs {
			if in.Source == planner.SourceModel {
				r.outputs[in.Model] = true
			}
		}
	}
	if err := r.planChains(); err != nil {
		return nil, err
	}
	for first, c := range r.chains {
		for _, nd := range c[1:] {
			nd.rec.FusedInto = first
		}
	}
	if err := opts.Runs.Create(r.rec); err != nil {
		return nil, err
	}
	files, hash, err := opts.Runs.SnapshotCode(opts.ID, opts.ProjectDir)
	if err != nil {
		return r.finish(ctx, err, "")
	}
	r.rec.Files, r.rec.CodeHash = files, hash
	if r.logs, err = opts.Runs.OpenLogs(opts.ID); err != nil {
		return r.finish(ctx, err, "")
	}
	r.logs.SetLimit(opts.LogLimit)
	defer r.logs.Close()
	r.pruneFailed(ctx)

	if err = os.MkdirAll(opts.ShmDir, 0o755); err == nil {
		r.dir, err = os.MkdirTemp(opts.ShmDir, RunDirPrefix(opts.ID))
	}
	if err != nil {
		return r.finish(ctx, fmt.Errorf("creating the run folder in %s: %w", opts.ShmDir, err), "")
	}
	defer os.RemoveAll(r.dir)
	defer r.cacheWG.Wait()

	from := catalog.Ref{Name: string(opts.Target)}
	if opts.From != nil {
		from = *opts.From
	}
	if r.start, err = opts.Catalog.Resolve(ctx, from); err != nil {
		return r.finish(ctx, err, "")
	}
	r.rec.StartCommit = string(r.start.ID)
	r.base = r.start
	if opts.RerunOf != "" {
		if r.base, err = opts.Catalog.Resolve(ctx, catalog.Ref{Name: string(opts.Target)}); err != nil {
			return r.finish(ctx, err, "")
		}
		if r.base.ID != r.start.ID {
			r.rec.BaseCommit = string(r.base.ID)
		}
	}
	r.branch = runBranchName(opts.User, opts.ID)
	// The record names the branch before it exists: a run killed just
	// after creating it leaves no branch that nothing would remove.
	r.rec.RunBranch, r.rec.BranchKept = string(r.branch), true
	r.save()
	if _, err := opts.Catalog.CreateBranch(ctx, r.branch, catalog.Ref{Commit: string(r.base.ID)}); err != nil {
		r.rec.BranchKept = false
		return r.finish(ctx, fmt.Errorf("creating the run branch: %w", err), "")
	}
	if opts.OnStart != nil {
		opts.OnStart(r.rec, r.dir)
	}

	r.scans = newScanner(opts.Catalog, opts.Scans, r.dir, r.start)
	if opts.CacheDir != "" {
		r.cache = &resultCache{dir: opts.CacheDir, max: opts.CacheMaxBytes, maxEntry: opts.CacheMaxEntry}
	}
	r.slots = make(chan struct{}, opts.Parallel)
	r.memory = newBudget(opts.MemoryBudget)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Environments are assembled from the start, beside the scans; those
	// no model waits for any more (it failed, or came from the cache) are
	// stopped once every model is through, and none may touch the record
	// or the package cache once Run has returned.
	envCtx, stopEnvs := context.WithCancel(ctx)
	defer stopEnvs()
	r.startEnvs(envCtx)

	var wg sync.WaitGroup
	var failOnce sync.Once
	var failure error
	var failedModel string
	for _, n := range p.Models {
		nd := r.nodes[n.Name]
		if r.fused[n.Name] {
			continue // its chain's first model runs it
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			model, err := r.runNode(ctx, nd)
			if err != nil {
				failOnce.Do(func() {
					failure, failedModel = err, model
					cancel(err)
				})
			}
		}()
	}
	wg.Wait()
	stopEnvs()
	r.envWG.Wait()
	if failure == nil && ctx.Err() != nil {
		failure = context.Cause(ctx)
	}
	if failure != nil {
		return r.finish(ctx, failure, failedModel)
	}
	return r.commit(ctx)
}

// DefaultShmDir is where runs keep their folders when Options.ShmDir is
// empty: /dev/shm, else os.TempDir().
func DefaultShmDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// RunDirPrefix starts the name of run id's folder in Options.ShmDir: a
// reaper removes the folder of a killed run by it.
func RunDirPrefix(id string) string { return "lakehouse-run-" + id + "-" }

func (o *Options) validate() error {
	switch {
	case o.Plan == nil || o.Catalog == nil || o.Scans == nil || o.Runs == nil:
		return errdefs.New(errdefs.ErrInvalidArgument, "pipeline: Plan, Catalog, Scans and Runs are required")
	case o.Target == "":
		return errdefs.New(errdefs.ErrInvalidArgument, "pipeline: no target branch")
	}
	if o.ShmDir == "" {
		o.ShmDir = DefaultShmDir()
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.NumCPU()
	}
	if o.KeepFailed == 0 {
		o.KeepFailed = 7 * 24 * time.Hour
	}
	if o.CacheMaxBytes <= 0 {
		o.CacheMaxBytes = 4 << 30
	}
	if o.CacheMaxEntry <= 0 {
		o.CacheMaxEntry = 256 << 20
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = availableMemory() * 8 / 10
	}
	if o.User == "" {
		o.User = catalog.DefaultAuthor()
	}
	return nil
}

// runBranchName is <user>.run-<id>, with a user that is not a valid name
// part replaced by "lakehouse".
func runBranchName(user, id string) catalog.BranchName {
	if b, err := catalog.ParseBranchName(user + ".run-" + id); err == nil && b != catalog.MainBranch {
		return b
	}
	return catalog.BranchName("lakehouse.run-" + id)
}

// emit sends an event and, for states, saves the record.
func (r *run) emit(ev Event) {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	if ev.Kind == EventLog && r.logs != nil {
		r.logs.Write(runrec.LogLine{Time: ev.Line.Time, Model: ev.Line.Model, Stream: ev.Line.Stream, Text: ev.Line.Text})
	}
	if (ev.Kind == EventMessage || ev.Kind == EventWarning) && r.logs != nil {
		r.logs.Write(runrec.LogLine{Time: time.Now().UTC(), Model: ev.Model, Stream: "lakehouse", Text: ev.Text})
	}
	if ev.Kind == EventState {
		r.opts.Runs.Save(r.rec)
	}
	if r.opts.Events != nil {
		r.opts.Events(ev)
	}
}

// set changes the record under the lock its saves take: a model's
// fields are written by its goroutine while others save the record.
func (r *run) set(fn func()) {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	fn()
}

func (r *run) save() {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	r.opts.Runs.Save(r.rec)
}

// setState moves a model to state and reports it.
func (r *run) setState(nd *node, state string) {
	r.evMu.Lock()
	now := time.Now().UTC()
	nd.rec.State = state
	switch state {
	case runrec.StateStarting, runrec.StateRunning:
		if nd.rec.Started.IsZero() {
			nd.rec.Started = now
			nd.began = now
		}
	case runrec.StateDone, runrec.StateFailed, runrec.StateReused:
		nd.rec.Ended = now
		if !nd.began.IsZero() {
			nd.rec.Seconds = now.Sub(nd.began).Seconds()
		}
	}
	var el time.Duration
	if !nd.began.IsZero() {
		el = now.Sub(nd.began)
	}
	r.evMu.Unlock()
	r.emit(Event{Kind: EventState, Model: nd.n.Name, State: state, Elapsed: el, Rows: nd.rec.Rows})
}

// runNode waits for the model's inputs, then runs it (and, for the first
// model of a fused chain, the chain). It returns the model that failed.
func (r *run) runNode(ctx context.Context, nd *node) (model string, err error) {
	members := []*node{nd}
	if c := r.chains[nd.n.Name]; c != nil {
		members = c
	}
	defer func() {
		for _, m := range members {
			close(m.done)
		}
	}()
	skip := func() (string, error) {
		for _, m := range members {
			r.setState(m, runrec.StateSkipped)
		}
		return "", nil
	}
	model = nd.n.Name
	defer func() {
		// A bug of ours (or of a library reading an output) fails the
		// run like a failed model: recorded, target untouched, folder
		// removed, rather than killing the process mid-run.
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error while running %s: %v (please report it with the stack in `lakehouse runs logs %s`)", nd.n.Name, p, r.opts.ID)
			stack := fmt.Sprintf("internal error: %v\n%s", p, debug.Stack())
			r.set(func() {
				nd.rec.Error = err.Error()
				if r.logs != nil {
					r.logs.Write(runrec.LogLine{Time: time.Now().UTC(), Model: nd.n.Name, Stream: "lakehouse", Text: stack})
				}
			})
			r.setState(nd, runrec.StateFailed)
		}
	}()
	for _, up := range nd.n.Upstream {
		u := r.nodes[up]
		select {
		case <-u.done:
			if u.ok {
				continue
			}
		case <-ctx.Done():
		}
		return skip()
	}
	if ctx.Err() != nil {
		return skip()
	}
	if r.opts.Admit != nil {
		if err := r.opts.Admit(ctx); err != nil {
			return skip()
		}
	}
	mem := nd.n.Resources.MemoryBytes
	if err := r.memory.acquire(ctx, mem); err != nil {
		return skip()
	}
	defer r.memory.release(mem)
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return skip()
	}
	defer func() { <-r.slots }()
	if len(members) > 1 {
		return r.runChain(ctx, members)
	}

	r.setState(nd, runrec.StateStarting)
	err = r.execute(ctx, nd)
	if err != nil {
		if ctx.Err() != nil && !isFunctionError(err, nd.n.Name) {
			// Stopped because another model failed or the run was cancelled.
			r.setState(nd, runrec.StateSkipped)
			return model, context.Cause(ctx)
		}
		r.fail(nd, err)
		return model, err
	}
	nd.ok = true
	return "", nil
}

// fail records err as nd's failure.
func (r *run) fail(nd *node, err error) {
	r.set(func() {
		nd.rec.Error = err.Error()
		var fe *function.FunctionError
		if errors.As(err, &fe) {
			nd.rec.Traceback = fe.Traceback
		}
	})
	r.setState(nd, runrec.StateFailed)
}

// isFunctionError reports whether err is model's own function failing
// (not another model's failure it was stopped by: that comes back as the
// run context's cause).
func isFunctionError(err error, model string) bool {
	var fe *function.FunctionError
	var ee *ExpectationError
	return errors.As(err, &fe) && fe.Model == model || errors.As(err, &ee) && ee.Model == model
}

// execute runs one model: cache lookup, inputs, the function, its output.
func (r *run) execute(ctx context.Context, nd *node) error {
	n := nd.n
	// The key needs no input read: a reused output skips the scans. A
	// Python model's key waits for its environment; while that is still
	// being installed (new requirements: most likely not reused anyway)
	// the inputs are read meanwhile.
	type read struct {
		ins []boundInput
		err error
	}
	var early func() read // the early read, once it has ended
	if n.Python != nil && !r.envReady(n) {
		c := make(chan read, 1)
		go func() {
			ins, err := r.inputs(ctx, nd)
			c <- read{ins, err}
		}()
		early = sync.OnceValue(func() read { return <-c })
		// Whatever happens, it ends before execute does (its scans may be
		// shared with other models, and the run folder outlives it).
		defer early()
	}
	nd.key = r.cacheKey(ctx, nd)
	if n.Kind == "model" {
		nd.output = filepath.Join(r.dir, "out", n.Name+".arrow")
		if err := os.MkdirAll(filepath.Dir(nd.output), 0o755); err != nil {
			return err
		}
	}
	reused := false
	var cached cacheMeta
	if nd.key != "" && !r.opts.NoCache && r.cache != nil && n.Kind == "model" {
		if meta, ok := r.cache.get(nd.key, nd.output); ok {
			reused, cached = true, meta
			r.set(func() { nd.rec.Rows, nd.rec.Fingerprint, nd.rec.CacheKey = meta.Rows, meta.Fingerprint, nd.key })
			r.emit(Event{Kind: EventMessage, Model: n.Name, Text: "reused the output of run " + meta.Run + " (code, environment, inputs and parameters unchanged)"})
		}
	}
	if !reused {
		var inputs []boundInput
		var err error
		if early != nil {
			g := early()
			inputs, err = g.ins, g.err
		} else {
			inputs, err = r.inputs(ctx, nd)
		}
		if err != nil {
			return err
		}
		r.setState(nd, runrec.StateRunning)
		switch n.Language {
		case planner.LangSQL:
			err = r.runSQL(ctx, nd, inputs)
		default:
			err = r.runPython(ctx, nd, inputs)
		}
		if err != nil {
			return err
		}
	}
	if n.Kind == "expectation" {
		ok := nd.rec.Expectation == nil || *nd.rec.Expectation
		if !ok {
			if r.opts.Strict {
				return &ExpectationError{Model: n.Name}
			}
			r.emit(Event{Kind: EventWarning, Model: n.Name, Text: "expectation " + n.Name + " failed (add --strict to make it fail the run)"})
			r.evMu.Lock()
			r.rec.Warnings = append(r.rec.Warnings, "expectation "+n.Name+" failed")
			r.evMu.Unlock()
		}
		r.setState(nd, runrec.StateDone)
		return nil
	}
	return r.finishOutput(ctx, nd, reused, cached)
}

// finishOutput handles a model's output file once it exists (computed or
// copied from the cache): size, fingerprint, preview, materialization,
// caching, and the model's final state.
func (r *run) finishOutput(ctx context.Context, nd *node, reused bool, cached cacheMeta) error {
	n := nd.n
	if st, err := os.Stat(nd.output); err == nil {
		r.set(func() { nd.rec.Bytes = st.Size() })
		// Readers may map it, not change it.
		os.Chmod(nd.output, 0o444)
	} else {
		return fmt.Errorf("model %s returned no table: return a pyarrow Table, pandas or polars DataFrame", n.Name)
	}
	// The fingerprint (a pass over every value) is for outputs someone
	// compares: materialized tables (rerun) and outputs without a cache key
	// that a cached model downstream keys on.
	needFP := n.Output.Materialization != planner.MatNone || (nd.key == "" && r.outputs[n.Name])
	if nd.rec.Fingerprint == "" && needFP {
		fp, rows, err := fingerprint(nd.output)
		if err != nil {
			return fmt.Errorf("model %s: reading its output: %w", n.Name, err)
		}
		r.set(func() { nd.rec.Fingerprint, nd.rec.Rows = fp, rows })
	}
	if r.opts.PreviewRows > 0 {
		if text, err := preview(nd.output, r.opts.PreviewRows, nd.rec.Rows); err == nil {
			r.emit(Event{Kind: EventPreview, Model: n.Name, Text: text, Rows: nd.rec.Rows})
		}
	}
	if n.Output.Materialization != planner.MatNone && n.Output.Table != "" {
		if reused && n.Output.Materialization == planner.MatReplace && r.holds(ctx, n.Output.Table, cached) {
			// The table already is this output: nothing to write.
			r.set(func() { nd.rec.Table, nd.rec.Snapshot = cached.Table, cached.Snapshot })
		} else if err := r.materialize(ctx, nd); err != nil {
			return err
		}
	}
	if !reused && nd.key != "" && r.cache != nil {
		r.set(func() { nd.rec.CacheKey = nd.key })
		// The copy to disk runs beside the models downstream; the run
		// waits for it before removing its folder.
		meta := cacheMeta{Run: r.opts.ID, Model: n.Name, Rows: nd.rec.Rows, Fingerprint: nd.rec.Fingerprint,
			Table: nd.rec.Table, Snapshot: nd.rec.Snapshot}
		r.cacheWG.Add(1)
		go func() {
			defer r.cacheWG.Done()
			r.cache.put(nd.key, nd.output, meta)
		}()
	}
	if reused {
		r.setState(nd, runrec.StateReused)
	} else {
		r.setState(nd, runrec.StateDone)
	}
	return nil
}

// holds reports whether table on the run branch is at the snapshot a
// cached output was written as.
func (r *run) holds(ctx context.Context, table string, m cacheMeta) bool {
	if m.Table != table || m.Snapshot == 0 {
		return false
	}
	id, err := catalog.ParseTableIdent(table, "")
	if err != nil {
		return false
	}
	e, _, err := r.opts.Catalog.TableEntry(ctx, catalog.Ref{Name: string(r.branch)}, id)
	return err == nil && e.SnapshotID == m.Snapshot
}

// boundInput is an input ready for a function: an IPC file.
type boundInput struct {
	in      planner.Input
	path    string
	columns []string // for Python: select these (zero copy)
}

// inputs makes each input of nd an IPC file: a scan of a catalog table,
// or an upstream model's output (filtered through DuckDB when the input
// has a filter).
func (r *run) inputs(ctx context.Context, nd *node) ([]boundInput, error) {
	return r.inputsBut(ctx, nd, "")
}

// inputsBut is inputs without the input that reads model skip (which a
// fused chain passes in memory).
func (r *run) inputsBut(ctx context.Context, nd *node, skip string) ([]boundInput, error) {
	var out []boundInput
	for _, in := range nd.n.Inputs {
		if skip != "" && in.Source == planner.SourceModel && in.Model == skip {
			continue
		}
		switch in.Source {
		case planner.SourceTable:
			path, err := r.scans.scan(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("reading %s for %s: %w", in.Table, nd.n.Name, err)
			}
			out = append(out, boundInput{in: in, path: path})
		case planner.SourceModel:
			up := r.nodes[in.Model]
			path := up.output
			cols := in.Columns
			if err := checkColumns(path, in); err != nil {
				return nil, fmt.Errorf("%s: %w", nd.n.Name, err)
			}
			if strings.TrimSpace(in.Filter) != "" {
				p, err := r.filterFile(ctx, nd.n.Name, in, path)
				if err != nil {
					return nil, err
				}
				path, cols = p, nil
			}
			out = append(out, boundInput{in: in, path: path, columns: cols})
		}
	}
	return out, nil
}

// checkColumns says which columns an input asks for that its model's
// output does not have (known only once the model ran).
func checkColumns(path string, in planner.Input) error {
	if len(in.Columns) == 0 {
		return nil
	}
	schema, err := ipcSchema(path)
	if err != nil {
		return err
	}
	var missing []string
	for _, c := range in.Columns {
		if len(schema.FieldIndices(c)) == 0 {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	have := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		have[i] = f.Name
	}
	return fmt.Errorf("input %s asks for column(s) %s, which %s did not return (it returned %s)",
		in.Name, strings.Join(missing, ", "), in.Model, strings.Join(have, ", "))
}

// commit merges the run branch into the target in one commit.
func (r *run) commit(ctx context.Context) (*runrec.Record, error) {
	head, err := r.opts.Catalog.GetBranch(ctx, r.branch)
	if err != nil {
		return r.finish(ctx, err, "")
	}
	if head.Head == r.base.ID {
		// Nothing materialized: the target stays as it is.
		tgt, err := r.opts.Catalog.GetBranch(ctx, r.opts.Target)
		if err != nil {
			return r.finish(ctx, err, "")
		}
		r.rec.EndCommit = string(tgt.Head)
	} else {
		msg := fmt.Sprintf("run %s: %s", r.opts.ID, r.opts.Plan.Project)
		if r.opts.RerunOf != "" {
			msg += " (rerun of " + r.opts.RerunOf + ")"
		}
		props := map[string]string{catalog.PropRunID: r.opts.ID}
		// The merge must happen even if the user presses Ctrl-C now: it
		// is one store transaction, over in milliseconds.
		mctx := context.WithoutCancel(ctx)
		res, err := r.opts.Catalog.Merge(mctx, catalog.MergeRequest{
			Source: catalog.Ref{Name: string(r.branch)}, Into: r.opts.Target, Mode: catalog.MergeNoFF,
			Commit: catalog.CommitOptions{Author: r.opts.User, Message: msg, Properties: props},
		})
		if err != nil {
			return r.finish(ctx, fmt.Errorf("merging into %s: %w", r.opts.Target, err), "")
		}
		r.rec.EndCommit = string(res.Commit.ID)
	}
	if err := r.opts.Catalog.DeleteBranch(context.WithoutCancel(ctx), r.branch); err == nil {
		r.rec.BranchKept = false
	}
	r.rec.Status = runrec.StatusSucceeded
	r.end()
	return r.rec, nil
}

// finish records a failed or cancelled run. The target was never written.
func (r *run) finish(ctx context.Context, err error, model string) (*runrec.Record, error) {
	r.rec.Status = runrec.StatusFailed
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		r.rec.Status = runrec.StatusCancelled
		if errors.Is(context.Cause(ctx), ErrInterrupted) {
			r.rec.Status = runrec.StatusInterrupted
			err = ErrInterrupted
		}
	}
	r.rec.Error = err.Error()
	if r.rec.Status == runrec.StatusCancelled || r.rec.Status == runrec.StatusInterrupted {
		model = "" // a model stopped by the interruption did not fail
	}
	r.rec.FailedModel = model
	for _, m := range r.rec.Models {
		if m.State == runrec.StateWaiting || m.State == runrec.StateStarting || m.State == runrec.StateRunning {
			m.State = runrec.StateSkipped
		}
	}
	if r.rec.BranchKept {
		// A failed run that wrote nothing leaves nothing to inspect; one
		// whose branch is not to be kept leaves nothing either.
		if b, gerr := r.opts.Catalog.GetBranch(context.WithoutCancel(ctx), r.branch); gerr == nil && r.base != nil && (b.Head == r.base.ID || r.opts.KeepFailed < 0) {
			if r.opts.Catalog.DeleteBranch(context.WithoutCancel(ctx), r.branch) == nil {
				r.rec.BranchKept = false
			}
		}
	}
	r.end()
	if r.rec.Status == runrec.StatusCancelled || r.rec.Status == runrec.StatusInterrupted {
		return r.rec, err
	}
	return r.rec, &RunError{ID: r.opts.ID, Model: model, Err: err, RunBranch: r.rec.RunBranch}
}

func (r *run) end() {
	r.rec.Ended = time.Now().UTC()
	r.rec.Duration = r.rec.Ended.Sub(r.rec.Started).Seconds()
	r.save()
}

// pruneFailed deletes run branches of failed runs older than KeepFailed.
func (r *run) pruneFailed(ctx context.Context) {
	recs, err := r.opts.Runs.List()
	if err != nil {
		return
	}
	for _, rec := range ExpiredRunBranches(recs, time.Now().Add(-r.opts.KeepFailed)) {
		DropRunBranch(ctx, r.opts.Catalog, r.opts.Runs, rec)
	}
}

// ExpiredRunBranches returns the runs of recs whose kept run branch may go
// at cutoff: the run ended (failed or cancelled) before cutoff, or its
// process died (killed) and it started before cutoff. A running run's
// branch never goes.
func ExpiredRunBranches(recs []*runrec.Record, cutoff time.Time) []*runrec.Record {
	var out []*runrec.Record
	for _, rec := range recs {
		if !rec.BranchKept || rec.RunBranch == "" || rec.Ended.IsZero() || rec.Ended.After(cutoff) {
			if !(rec.BranchKept && rec.RunBranch != "" && rec.Live() == runrec.StatusKilled && rec.Started.Before(cutoff)) {
				continue
			}
		}
		if rec.Live() == runrec.StatusRunning {
			continue
		}
		out = append(out, rec)
	}
	return out
}

// DropRunBranch deletes the run branch of rec and records that it is gone.
// A branch already gone counts as deleted.
func DropRunBranch(ctx context.Context, cat catalog.Service, runs *runrec.Store, rec *runrec.Record) error {
	err := cat.DeleteBranch(ctx, catalog.BranchName(rec.RunBranch))
	if err != nil && !errdefs.Is(err, errdefs.ErrNotFound) {
		return err
	}
	rec.BranchKept = false
	return runs.Save(rec)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
