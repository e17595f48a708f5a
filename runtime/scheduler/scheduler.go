package scheduler

import (
	"fmt"
	"slices"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

type state int

const (
	statePending state = iota // waiting for parents
	stateReady                // in the ready queue
	stateRunning
	stateDone
	stateFailed
)

type task struct {
	Task
	reserve  Resources
	state    state
	waiting  int     // known parents not done
	parents  []*task // the parents the scheduler knows
	children []*task
	seq      uint64
	readyAt  time.Time
	key      int64 // ready queue order: larger first, then seq
	worker   *worker
	attempt  int
	// outBytes is the size of a done task's output on worker.
	outBytes int64
	copiedTo []*worker
	// ended is a running task of a run that ended: it is forgotten when
	// it is done.
	ended bool
}

type worker struct {
	st  WorkerState
	cap Resources
	// placed is the reservation of the running tasks this scheduler
	// placed; foreign that of the other tasks the worker reports.
	placed, foreign Resources
	envs            map[EnvHash]bool
	running         map[TaskID]*task
	outputs         map[TaskID]*task // done tasks whose output lives here
	shmPending      int64            // copies routed here since the last report
	held            bool
}

func (w *worker) used() Resources { return w.placed.add(w.foreign) }

func (w *worker) free() Resources { return w.cap.sub(w.used()) }

// load is the larger of the reserved shares of CPU and memory.
func (w *worker) load() float64 {
	u := w.used()
	l := 0.0
	if w.cap.MilliCPUs > 0 {
		l = float64(u.MilliCPUs) / float64(w.cap.MilliCPUs)
	}
	if w.cap.MemoryBytes > 0 {
		l = max(l, float64(u.MemoryBytes)/float64(w.cap.MemoryBytes))
	}
	return l
}

type hold struct {
	task   *task
	worker *worker
}

// Scheduler places tasks on workers. It is not safe for concurrent use:
// the control plane calls it under its own lock.
type Scheduler struct {
	cfg     Config
	workers map[WorkerID]*worker
	order   []*worker // by ID, for deterministic scans
	envs    map[EnvHash]map[*worker]bool
	tasks   map[TaskID]*task
	runs    map[RunID][]*task // a run's functions, until EndRun
	ready   readyQueue
	seq     uint64
	hold    *hold
}

// New returns an empty Scheduler. It panics on a Config that fails
// Validate: a Config is the program's, not a user's.
func New(cfg Config) *Scheduler {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Scheduler{
		cfg:     cfg,
		workers: make(map[WorkerID]*worker),
		envs:    make(map[EnvHash]map[*worker]bool),
		tasks:   make(map[TaskID]*task),
		runs:    make(map[RunID][]*task),
	}
}

// UpsertWorker adds a worker or replaces what the scheduler knows of it
// with its latest heartbeat. It returns ErrInvalidArgument for a state
// without ID or with negative capacity.
func (s *Scheduler) UpsertWorker(st WorkerState) error {
	if st.ID == "" || st.Cores < 0 || st.MemoryBytes < 0 || st.ShmFreeBytes < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "worker %q: a worker needs a name and non-negative cores, memory and /dev/shm", st.ID)
	}
	w := s.workers[st.ID]
	if w == nil {
		w = &worker{running: make(map[TaskID]*task), outputs: make(map[TaskID]*task)}
		s.workers[st.ID] = w
		i, _ := slices.BinarySearchFunc(s.order, st.ID, func(a *worker, id WorkerID) int { return compareIDs(a.st.ID, id) })
		s.order = slices.Insert(s.order, i, w)
	}
	for e := range w.envs {
		delete(s.envs[e], w)
	}
	w.st, w.cap, w.shmPending = st, st.capacity(), 0
	w.envs = make(map[EnvHash]bool, len(st.Envs))
	for _, e := range st.Envs {
		s.addEnv(w, e)
	}
	w.foreign = Resources{}
	for _, r := range st.Running {
		if t := w.running[r.ID]; t != nil {
			continue
		}
		w.foreign = w.foreign.add(r.Reserved)
	}
	for _, t := range w.running {
		// An environment being installed for a running task counts as
		// installed: the next task of the environment goes there too.
		s.addEnv(w, t.Env)
	}
	return nil
}

func (s *Scheduler) addEnv(w *worker, e EnvHash) {
	if e == "" || w.envs[e] {
		return
	}
	w.envs[e] = true
	if s.envs[e] == nil {
		s.envs[e] = make(map[*worker]bool)
	}
	s.envs[e][w] = true
}

// RemoveWorker drops a worker (it stopped heartbeating, or left). The
// tasks it was running go back to the queue, and so do the done tasks
// whose output it held while a child still waits for it: functions are
// pure, running one again gives the same output. It returns those tasks,
// in ID order, for the caller to count retries; a run that is out of
// retries is dropped with EndRun.
func (s *Scheduler) RemoveWorker(id WorkerID, now time.Time) []TaskID {
	w := s.workers[id]
	if w == nil {
		return nil
	}
	delete(s.workers, id)
	w.st.Alive = false // outputs copied there are gone with it
	s.order = slices.DeleteFunc(s.order, func(o *worker) bool { return o == w })
	for e := range w.envs {
		delete(s.envs[e], w)
	}
	if s.hold != nil && s.hold.worker == w {
		s.hold = nil
	}
	var again []*task
	for _, t := range w.running {
		if t.ended {
			// Its run ended: nothing waits for it to run again.
			t.worker = nil
			s.forget(t)
			continue
		}
		again = append(again, t)
		t.state = statePending // waiting is counted below
	}
	for _, t := range w.outputs {
		if slices.ContainsFunc(t.children, func(c *task) bool { return c.state == statePending || c.state == stateReady }) {
			again = append(again, t)
		}
	}
	slices.SortFunc(again, func(a, b *task) int { return compareIDs(a.ID, b.ID) })
	ids := make([]TaskID, len(again))
	var recount []*task
	for i, t := range again {
		ids[i] = t.ID
		if t.state == stateDone {
			t.copiedTo = nil
			delete(w.outputs, t.ID)
			// Its children that were ready wait for the output again.
			recount = append(recount, t.children...)
		}
		t.worker, t.state = nil, statePending
		recount = append(recount, t)
	}
	for _, t := range recount {
		if t.state != statePending && t.state != stateReady {
			continue
		}
		t.waiting = 0
		for _, p := range t.parents {
			if p.state != stateDone {
				t.waiting++
			}
		}
		switch {
		case t.state == stateReady && t.waiting > 0:
			s.unready(t)
		case t.state == statePending && t.waiting == 0:
			s.makeReady(t, now)
		}
	}
	return ids
}

// Submit queues a task. Its known parents must be submitted first; the
// task waits until they are done. It returns ErrAlreadyExists for a task
// ID in use, ErrInvalidArgument for a malformed task, and
// ErrFailedPrecondition, naming the resource, for a reservation larger
// than every live worker.
func (s *Scheduler) Submit(in Task) error {
	if err := s.check(in); err != nil {
		return err
	}
	t := &task{Task: in, reserve: s.reservation(in), seq: s.seq}
	t.Parents = slices.Clone(in.Parents)
	s.seq++
	if err := s.fitsSomeWorker(t); err != nil {
		return err
	}
	for _, p := range in.Parents {
		pt := s.tasks[p.Task]
		if pt == nil {
			continue
		}
		t.parents = append(t.parents, pt)
		pt.children = append(pt.children, t)
		if pt.state != stateDone {
			t.waiting++
		}
	}
	s.tasks[t.ID] = t
	if t.Kind == KindFunction {
		s.runs[t.Run] = append(s.runs[t.Run], t)
	}
	if t.waiting == 0 {
		s.makeReady(t, s.cfg.Now())
	}
	return nil
}

func (s *Scheduler) check(in Task) error {
	switch {
	case in.ID == "":
		return errdefs.New(errdefs.ErrInvalidArgument, "task without ID")
	case s.tasks[in.ID] != nil:
		return errdefs.New(errdefs.ErrAlreadyExists, "task %s is already submitted", in.ID)
	case in.Kind != KindFunction && in.Kind != KindQuery:
		return errdefs.New(errdefs.ErrInvalidArgument, "task %s: unknown kind %d", in.ID, int(in.Kind))
	case in.Priority < 0 || in.Priority > 10:
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "give a priority from 1 (lowest) to 10 (highest)", "task %s: invalid priority %d", in.ID, in.Priority)
	case in.Reserve.MilliCPUs < 0 || in.Reserve.MemoryBytes < 0:
		return errdefs.New(errdefs.ErrInvalidArgument, "task %s: negative reservation", in.ID)
	}
	seen := make(map[TaskID]bool, len(in.Parents))
	for _, p := range in.Parents {
		switch {
		case p.Task == in.ID:
			return errdefs.New(errdefs.ErrInvalidArgument, "task %s reads its own output", in.ID)
		case p.Task == "" || seen[p.Task]:
			return errdefs.New(errdefs.ErrInvalidArgument, "task %s: empty or repeated parent %q", in.ID, p.Task)
		case p.SizeBytes < 0:
			return errdefs.New(errdefs.ErrInvalidArgument, "task %s: parent %s has a negative size", in.ID, p.Task)
		}
		seen[p.Task] = true
	}
	return nil
}

func (s *Scheduler) reservation(t Task) Resources {
	def := s.cfg.DefaultFunction
	if t.Kind == KindQuery {
		def = s.cfg.DefaultQuery
	}
	r := t.Reserve
	if r.MilliCPUs == 0 {
		r.MilliCPUs = def.MilliCPUs
	}
	if r.MemoryBytes == 0 {
		r.MemoryBytes = def.MemoryBytes
	}
	return r
}

// fitsSomeWorker returns nil when t fits a live worker, or no worker is
// live (the task waits for one to join).
func (s *Scheduler) fitsSomeWorker(t *task) error {
	var biggest Resources
	live := false
	for _, w := range s.order {
		if !w.st.Alive {
			continue
		}
		live = true
		if t.reserve.fits(w.cap) {
			return nil
		}
		biggest.MilliCPUs = max(biggest.MilliCPUs, w.cap.MilliCPUs)
		biggest.MemoryBytes = max(biggest.MemoryBytes, w.cap.MemoryBytes)
	}
	if !live {
		return nil
	}
	r := t.reserve
	const hint = "lower its @resources(cpus=, memory=) or add a larger worker"
	switch {
	case r.MilliCPUs > biggest.MilliCPUs:
		return errdefs.WithHint(errdefs.ErrFailedPrecondition, hint, "%s %s reserves %s CPUs but the largest worker has %d cores",
			t.Kind, t.ID, fmtCPUs(r.MilliCPUs), biggest.MilliCPUs/1000)
	case r.MemoryBytes > biggest.MemoryBytes:
		return errdefs.WithHint(errdefs.ErrFailedPrecondition, hint, "%s %s reserves %d bytes of memory but the largest worker has %d",
			t.Kind, t.ID, r.MemoryBytes, biggest.MemoryBytes)
	}
	return errdefs.WithHint(errdefs.ErrFailedPrecondition, hint, "%s %s reserves %s CPUs and %d bytes of memory, and no worker has both",
		t.Kind, t.ID, fmtCPUs(r.MilliCPUs), r.MemoryBytes)
}

// Stuck returns, for each waiting task that fits no live worker any more
// (the workers that could hold it left), the error Submit would give.
func (s *Scheduler) Stuck() map[TaskID]error {
	var out map[TaskID]error
	for _, t := range s.tasks {
		if t.state != statePending && t.state != stateReady {
			continue
		}
		if err := s.fitsSomeWorker(t); err != nil {
			if out == nil {
				out = make(map[TaskID]error)
			}
			out[t.ID] = err
		}
	}
	return out
}

func fmtCPUs(milli int64) string {
	if milli%1000 == 0 {
		return fmt.Sprint(milli / 1000)
	}
	return fmt.Sprintf("%.3g", float64(milli)/1000)
}

// Done takes the result of a placed task: its reservation is released and,
// when it succeeded, its children whose parents are all done become ready.
// It returns ErrNotFound for an unknown task and ErrConflict for a result
// of a task that is not running, or of an earlier attempt (a late result
// of a worker that was dropped and came back): such results are refused.
func (s *Scheduler) Done(r Result, now time.Time) error {
	t := s.tasks[r.Task]
	if t == nil {
		return errdefs.New(errdefs.ErrNotFound, "task %s is not known to the scheduler", r.Task)
	}
	if t.state != stateRunning || t.attempt != r.Attempt {
		return errdefs.New(errdefs.ErrConflict, "result of task %s attempt %d refused: the current attempt is %d (%s)",
			r.Task, r.Attempt, t.attempt, t.stateName())
	}
	w := t.worker
	delete(w.running, t.ID)
	w.placed = w.placed.sub(t.reserve)
	t.state, t.outBytes = stateDone, max(r.OutputBytes, 0)
	if r.Failed {
		t.state = stateFailed
	}
	if t.ended || t.Kind == KindQuery {
		s.forget(t)
		return nil
	}
	if r.Failed {
		return nil
	}
	w.outputs[t.ID] = t
	for _, c := range t.children {
		if c.state != statePending {
			continue
		}
		c.waiting--
		if c.waiting == 0 {
			s.makeReady(c, now)
		}
	}
	return nil
}

func (t *task) stateName() string {
	return [...]string{"waiting for its parents", "ready", "running", "done", "failed"}[t.state]
}

func (s *Scheduler) forget(t *task) {
	delete(s.tasks, t.ID)
	if t.worker != nil {
		delete(t.worker.outputs, t.ID)
	}
	for _, p := range t.parents {
		p.children = slices.DeleteFunc(p.children, func(c *task) bool { return c == t })
	}
}

// EndRun forgets a run that completed, failed or was cancelled: its
// waiting tasks are dropped and returned in ID order, its done and failed
// ones forgotten (their outputs are no longer placement's business). Its
// running tasks are forgotten when they are done.
func (s *Scheduler) EndRun(run RunID) []TaskID {
	var dropped []*task
	for _, t := range s.runs[run] {
		if s.tasks[t.ID] == t {
			dropped = append(dropped, t)
		}
	}
	delete(s.runs, run)
	slices.SortFunc(dropped, func(a, b *task) int { return compareIDs(a.ID, b.ID) })
	var ids []TaskID
	for _, t := range dropped {
		switch t.state {
		case stateRunning:
			t.ended = true
			continue
		case statePending, stateReady:
			ids = append(ids, t.ID)
		}
		if t.state == stateReady {
			s.unready(t)
		}
		s.forget(t)
	}
	return ids
}

func compareIDs[T ~string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
