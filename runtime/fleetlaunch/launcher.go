package fleetlaunch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/scheduler"
)

// Config configures a Launcher.
type Config struct {
	// Assigner gives tasks to workers (flight.WorkHub).
	Assigner fleet.Assigner
	// Workers lists the workers alive (fleet.Registry.Alive).
	Workers func(ctx context.Context) []fleet.WorkerInfo
	// TicketKey signs handoff tickets (fleet.Registry.TicketKey).
	TicketKey []byte
	// Intermediates is the control plane's own registry, served by its
	// Flight server: inputs it holds are handed over from it.
	Intermediates *flight.Intermediates
	// Retries is how many more times a task whose worker was lost runs
	// (default 1; negative: none).
	Retries int
	// Fetch configures the fetches of outputs from workers.
	Fetch flight.FetchOptions
	// TicketTTL is how long a handoff ticket is honoured (default 1 hour).
	TicketTTL time.Duration
	// Refresh is how often the workers are read again (default 200ms).
	Refresh time.Duration
	// Log receives placements and retries (nil: discarded).
	Log *slog.Logger
}

// Validate checks c and fills its defaults.
func (c *Config) Validate() error {
	if c.Assigner == nil || c.Workers == nil || len(c.TicketKey) == 0 || c.Intermediates == nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "fleetlaunch: a launcher needs an assigner, the workers, a ticket key and the control plane's intermediates")
	}
	switch {
	case c.Retries == 0:
		c.Retries = 1
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.TicketTTL == 0 {
		c.TicketTTL = time.Hour
	}
	if c.Refresh == 0 {
		c.Refresh = 200 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Launcher runs invocations on the workers of a fleet.
type Launcher struct {
	cfg  Config
	d    *dispatcher
	seq  atomic.Int64
	mu   sync.Mutex
	locs map[fileID]location    // outputs fetched from workers
	held map[string]*controlled // inputs the control plane hands over, by key
	code map[string]*packedCode // packed code folders, by run and folder
}

// fileID is a file's device and inode: a hard link or rename of it is
// the same file.
type fileID struct{ dev, ino uint64 }

// location is where an output the launcher fetched also lives.
type location struct {
	run, model, worker, lease string
	size                      int64
}

// controlled is an input registered in the control plane's
// intermediates: the paths of the running tasks that read it.
type controlled struct {
	run   string
	paths []string
}

var _ function.Launcher = (*Launcher)(nil)

// New returns a Launcher; Close stops it.
func New(cfg Config) (*Launcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Launcher{cfg: cfg, d: newDispatcher(cfg.Workers, cfg.Refresh),
		locs: map[fileID]location{}, held: map[string]*controlled{}, code: map[string]*packedCode{}}, nil
}

// Name is "fleet".
func (l *Launcher) Name() string { return "fleet" }

// Close stops placing tasks.
func (l *Launcher) Close() error {
	l.d.close()
	return nil
}

// EndRun forgets a run that ended: its tasks, the locations of its
// outputs, and tells the workers to drop its intermediates.
func (l *Launcher) EndRun(run string) {
	l.d.endRun(run)
	l.mu.Lock()
	for k, loc := range l.locs {
		if loc.run == run {
			delete(l.locs, k)
		}
	}
	for dir := range l.code {
		if strings.HasPrefix(dir, run+"\x00") {
			delete(l.code, dir)
		}
	}
	l.mu.Unlock()
	l.cfg.Intermediates.ForgetRun(run)
	if b, err := json.Marshal(Note{EndRun: run}); err == nil {
		l.cfg.Assigner.Broadcast(b)
	}
}

// input is an input file of an invocation and where it also lives.
type input struct {
	arg     string
	path    string
	columns []string
	key     string // the model it is the output of, or a control key
	loc     *location
}

// Launch runs inv on a worker. Errors: *function.FunctionError for a
// failed function; errdefs.ErrFailedPrecondition for a task that fits no
// worker; errdefs.ErrUnavailable when its workers were lost more than
// Config.Retries times; ctx's error when ctx ends first.
func (l *Launcher) Launch(ctx context.Context, inv function.Invocation) (*function.Result, error) {
	start := time.Now()
	if inv.Run == "" || inv.Env == nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "invocation of %s: a fleet runs only invocations of a run with an environment", inv.Model)
	}
	if inv.InputsLater {
		if err := waitInputs(ctx, inv); err != nil {
			return nil, err
		}
	}
	base, err := l.task(inv)
	if err != nil {
		return nil, err
	}
	ins, steps, err := l.locate(inv)
	if err != nil {
		return nil, err
	}
	defer l.release(inv.Run, ins, steps)
	env := envHash(base.Env.Python, base.Env.Requirements)
	fromControl := false
	var workers []string
	again := "" // why the last attempt must run again
	for attempt := 1; ; attempt++ {
		p, err := l.place(ctx, inv, env, ins, steps, attempt)
		if err != nil {
			return nil, err
		}
		if again != "" {
			l.say(inv, fmt.Sprintf("%s: running it again on %s (attempt %d of %d)", again, p.w.Name, attempt, l.cfg.Retries+1))
		}
		workers = append(workers, p.w.Name)
		res, retry, err := l.attempt(ctx, inv, base, p, ins, steps, fromControl)
		if err == nil {
			res.Worker, res.Attempts, res.Duration = p.w.Name, attempt, time.Since(start)
			return res, nil
		}
		if !retry {
			return nil, err
		}
		// What failed, without the hint meant for a client's user (such
		// as "start it with `lakehouse serve`").
		why, _ := errdefs.Split(err)
		if attempt > l.cfg.Retries {
			return nil, errdefs.WithHint(errdefs.ErrUnavailable, "run it again once the fleet is stable",
				"model %s could not complete on worker(s) %s (%d attempts): %s", inv.Model, strings.Join(workers, ", "), attempt, why)
		}
		// The next attempt takes its inputs from the control plane: the
		// workers holding them may be going too.
		fromControl = true
		again = fmt.Sprintf("[lakehouse] worker %s lost while running %s", p.w.Name, inv.Model)
		if !errors.Is(err, fleet.ErrWorkerLost) {
			again = fmt.Sprintf("[lakehouse] %s failed on worker %s (%s)", inv.Model, p.w.Name, why)
		}
		l.cfg.Log.Warn("task to run again", "model", inv.Model, "run", inv.Run, "worker", p.w.Name, "err", err)
	}
}

// say logs a line of the launcher in the invocation's log.
func (l *Launcher) say(inv function.Invocation, text string) {
	l.cfg.Log.Info(text, "model", inv.Model, "run", inv.Run)
	if inv.Log != nil {
		inv.Log(function.LogLine{Model: inv.Model, Stream: "stderr", Text: text, Time: time.Now()})
	}
}

// place submits one attempt and waits for its placement.
func (l *Launcher) place(ctx context.Context, inv function.Invocation, env scheduler.EnvHash, ins []input, steps [][]input, attempt int) (placed, error) {
	t := scheduler.Task{
		ID:   scheduler.TaskID(fmt.Sprintf("%s/%s/%d@%s", inv.Run, inv.Model, l.seq.Add(1), env)),
		Kind: scheduler.KindFunction, Run: scheduler.RunID(inv.Run), Env: env,
		Reserve: scheduler.Resources{MilliCPUs: scheduler.CPUs(inv.CPUs), MemoryBytes: inv.Memory},
	}
	seen := map[scheduler.TaskID]bool{}
	for _, in := range allInputs(ins, steps) {
		if in.loc == nil {
			continue
		}
		id := scheduler.TaskID("output/" + in.loc.run + "/" + in.loc.model)
		if seen[id] {
			continue
		}
		seen[id] = true
		if _, ok := l.d.holder(in.loc.worker, in.loc.lease); ok {
			t.Parents = append(t.Parents, scheduler.Input{Task: id, Worker: scheduler.WorkerID(in.loc.worker), SizeBytes: in.loc.size})
		}
	}
	ch, alive, err := l.d.submit(t)
	if err != nil {
		return placed{}, fmt.Errorf("placing %s: %w", inv.Model, err)
	}
	if alive == 0 {
		l.say(inv, fmt.Sprintf("[lakehouse] no worker alive: %s waits for one to join", inv.Model))
	}
	select {
	case p := <-ch:
		if p.err != nil {
			return placed{}, fmt.Errorf("placing %s: %w", inv.Model, p.err)
		}
		l.cfg.Log.Debug("placed", "model", inv.Model, "worker", p.w.Name, "reason", p.p.Reason, "attempt", attempt)
		return p, nil
	case <-ctx.Done():
		l.d.abandon(t.ID)
		select {
		case p := <-ch: // placed meanwhile
			if p.err == nil {
				l.d.finish(p, true, 0, false)
			}
		default:
		}
		return placed{}, ctx.Err()
	}
}

// attempt runs the task on its placement. retry is a worker lost (or an
// input or output it could not hand over): the task may run again.
func (l *Launcher) attempt(ctx context.Context, inv function.Invocation, base Task, p placed, ins []input, steps [][]input, fromControl bool) (*function.Result, bool, error) {
	t := base
	var err error
	if t.Inputs, err = l.sources(inv.Run, p.w, ins, fromControl); err != nil {
		l.d.finish(p, true, 0, false)
		return nil, false, err
	}
	for i := range t.Then {
		if t.Then[i].Inputs, err = l.sources(inv.Run, p.w, steps[i], fromControl); err != nil {
			l.d.finish(p, true, 0, false)
			return nil, false, err
		}
	}
	raw, err := json.Marshal(t)
	if err != nil {
		l.d.finish(p, true, 0, false)
		return nil, false, err
	}
	out, err := l.cfg.Assigner.Assign(ctx, p.w.Name, p.w.Lease, raw, func(ev json.RawMessage) { relay(inv, ev) })
	if err != nil {
		lost := errors.Is(err, fleet.ErrWorkerLost) && ctx.Err() == nil
		l.d.finish(p, true, 0, lost)
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, lost, fmt.Errorf("%s on worker %s: %w", inv.Model, p.w.Name, err)
	}
	var r TaskResult
	if err := json.Unmarshal(out, &r); err != nil || (r.Done == nil && r.Failure == nil && r.Error == nil) {
		l.d.finish(p, true, 0, false)
		return nil, false, errdefs.New(errdefs.ErrInternal, "worker %s sent a malformed result for %s", p.w.Name, inv.Model)
	}
	switch {
	case r.Failure != nil:
		l.d.finish(p, true, 0, false)
		return nil, false, r.Failure.native()
	case r.Error != nil:
		l.d.finish(p, true, 0, false)
		return nil, r.Error.Retry, r.Error.err(inv.Model, p.w.Name)
	}
	res := &function.Result{Rows: r.Done.Rows, Expectation: r.Done.Expectation, StepRows: r.Done.StepRows}
	if r.Done.Output && inv.Output != "" {
		if err := l.fetchOutput(ctx, inv, t, p); err != nil {
			l.d.finish(p, true, 0, ctx.Err() == nil)
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			return nil, true, err
		}
		res.Output = inv.Output
	}
	l.d.finish(p, false, r.Done.OutputBytes, false)
	return res, false, nil
}

// fetchOutput brings a task's output from its worker into inv.Output and
// remembers that it also lives there.
func (l *Launcher) fetchOutput(ctx context.Context, inv function.Invocation, t Task, p placed) error {
	model := t.lastModel()
	ticket, err := flight.SignIntermediate(l.cfg.TicketKey, flight.IntermediateTicket{Run: inv.Run, Model: model,
		Worker: p.w.Name, Lease: p.w.Lease, Expires: time.Now().Add(l.cfg.TicketTTL)})
	if err != nil {
		return err
	}
	if err := flight.FetchIntermediate(ctx, flight.DataLocation(p.w.Addr), ticket, inv.Output, l.cfg.Fetch); err != nil {
		return fmt.Errorf("output of %s from worker %s: %w", model, p.w.Name, err)
	}
	id, size, err := statID(inv.Output)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.locs[id] = location{run: inv.Run, model: model, worker: p.w.Name, lease: p.w.Lease, size: size}
	l.mu.Unlock()
	return nil
}

// relay passes a worker's event on to the invocation.
func relay(inv function.Invocation, raw json.RawMessage) {
	var ev Event
	if json.Unmarshal(raw, &ev) != nil {
		return
	}
	if ev.Log != nil {
		if inv.Log != nil {
			inv.Log(*ev.Log)
		}
		return
	}
	if ev.Step > 0 {
		if len(ev.Preview) > 0 && inv.PreviewRows > 0 {
			os.WriteFile(function.PreviewPath(inv.DataDir, ev.Step-1), ev.Preview, 0o644)
		}
		if inv.OnStep != nil {
			inv.OnStep(ev.Step, ev.Rows)
		}
	}
}

// task is the part of inv's task that does not depend on the placement.
func (l *Launcher) task(inv function.Invocation) (Task, error) {
	spec, err := pinned(inv.Env)
	if err != nil {
		return Task{}, err
	}
	dir := filepath.Dir(inv.ModulePath)
	code, err := l.packed(inv.Run, dir)
	if err != nil {
		return Task{}, err
	}
	mod, err := relModule(dir, inv.ModulePath)
	if err != nil {
		return Task{}, err
	}
	t := Task{Version: TaskVersion, Run: inv.Run, Model: inv.Model, Module: mod, Function: inv.Function, Params: inv.Params,
		Env: spec, Output: inv.Output != "", Memory: inv.Memory, TimeoutMillis: inv.Timeout.Milliseconds(),
		InternetAccess: inv.InternetAccess, PreviewRows: inv.PreviewRows, Code: code}
	for _, s := range inv.Then {
		m, err := relModule(dir, s.ModulePath)
		if err != nil {
			return Task{}, err
		}
		t.Then = append(t.Then, TaskStep{Model: s.Model, Module: m, Function: s.Function, Chain: s.Chain,
			ChainColumns: s.ChainColumns, Params: s.Params})
	}
	return t, nil
}

// packedCode is a code folder packed once, however many launches of
// the run ask for it at the same time.
type packedCode struct {
	once sync.Once
	c    Code
	err  error
}

// packed is the run's code folder dir, packed once per run.
func (l *Launcher) packed(run, dir string) (Code, error) {
	key := run + "\x00" + dir
	l.mu.Lock()
	p := l.code[key]
	if p == nil {
		p = &packedCode{}
		l.code[key] = p
	}
	l.mu.Unlock()
	p.once.Do(func() { p.c, p.err = packCode(dir) })
	if p.err != nil {
		l.mu.Lock()
		if l.code[key] == p {
			delete(l.code, key) // the next launch tries again
		}
		l.mu.Unlock()
	}
	return p.c, p.err
}

// waitInputs waits until every input file of inv exists.
func waitInputs(ctx context.Context, inv function.Invocation) error {
	var paths []string
	for _, in := range inv.Inputs {
		paths = append(paths, in.Path)
	}
	for _, s := range inv.Then {
		for _, in := range s.Inputs {
			paths = append(paths, in.Path)
		}
	}
	for _, p := range paths {
		for {
			if _, err := os.Stat(p); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

func statID(p string) (fileID, int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return fileID{}, 0, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, 0, errdefs.New(errdefs.ErrInternal, "no inode for %s", p)
	}
	return fileID{dev: uint64(sys.Dev), ino: sys.Ino}, st.Size(), nil
}
