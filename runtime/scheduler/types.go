package scheduler

import (
	"fmt"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// WorkerID names a worker of the fleet (its --name).
type WorkerID string

// TaskID names one task: a function of a run, or a query.
type TaskID string

// RunID names the run a function belongs to.
type RunID string

// EnvHash names a Python environment (the envcache key of its pins).
type EnvHash string

// Kind tells queries from a run's functions.
type Kind int

const (
	// KindFunction is one node of a run's DAG (a Python or SQL model).
	KindFunction Kind = iota + 1
	// KindQuery is an interactive query; it goes before every batch
	// function of the same age.
	KindQuery
)

func (k Kind) String() string {
	switch k {
	case KindFunction:
		return "function"
	case KindQuery:
		return "query"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Resources is a reservation: thousandths of a CPU and bytes of memory.
// It comes from a model's @resources(cpus=, memory=).
type Resources struct {
	MilliCPUs   int64
	MemoryBytes int64
}

// CPUs converts a @resources(cpus=) value to thousandths of a CPU.
func CPUs(cpus float64) int64 { return int64(cpus*1000 + 0.5) }

func (r Resources) add(o Resources) Resources {
	return Resources{r.MilliCPUs + o.MilliCPUs, r.MemoryBytes + o.MemoryBytes}
}

func (r Resources) sub(o Resources) Resources {
	return Resources{r.MilliCPUs - o.MilliCPUs, r.MemoryBytes - o.MemoryBytes}
}

// fits reports whether r fits in o.
func (r Resources) fits(o Resources) bool {
	return r.MilliCPUs <= o.MilliCPUs && r.MemoryBytes <= o.MemoryBytes
}

// RunningTask is a task a worker reports as running, with its reservation.
type RunningTask struct {
	ID       TaskID
	Reserved Resources
}

// WorkerState is one worker as its last heartbeat described it.
type WorkerState struct {
	ID          WorkerID
	Cores       int
	MemoryBytes int64
	// ShmFreeBytes is the free space of the worker's /dev/shm: inputs that
	// live on other workers are streamed there before a child starts.
	ShmFreeBytes int64
	// Launcher is the worker's function launcher (process, containerd).
	Launcher string
	// Envs are the environments already installed on the worker.
	Envs []EnvHash
	// Running are the tasks the worker runs. Those the scheduler placed
	// itself are counted once; the others (placed before a control plane
	// restart) hold their reservation until the worker stops reporting them.
	Running []RunningTask
	// Alive is false for a worker that stopped heartbeating but is not
	// removed yet: nothing new is placed on it.
	Alive bool
}

func (w WorkerState) capacity() Resources {
	return Resources{int64(w.Cores) * 1000, w.MemoryBytes}
}

// Input is a parent of a task and where its output lives.
type Input struct {
	Task TaskID
	// Worker and SizeBytes say where the parent's output is, for a parent
	// the scheduler does not know (it finished before the task was
	// submitted, e.g. before a control plane restart). For a parent the
	// scheduler knows, they are ignored: the task waits for the parent, and
	// its output is where the parent ran. An empty Worker is an output in
	// object storage, local to no worker.
	Worker    WorkerID
	SizeBytes int64
}

// Task is a query or a run's function waiting to be placed.
type Task struct {
	ID   TaskID
	Kind Kind
	Run  RunID
	// Parents are the tasks whose outputs this one reads.
	Parents []Input
	// Env is the function's environment; empty for queries and SQL models.
	Env EnvHash
	// Reserve is the task's @resources reservation; zero fields take the
	// Config defaults.
	Reserve Resources
	// Priority is the run's priority, 1 (lowest) to 10 (highest); 0 is the
	// default, 5. Queries ignore it: they rank above every run.
	Priority int
}

// Fetch is an input a placed task reads from another worker (over Flight's
// DoGet into its own /dev/shm) before it starts.
type Fetch struct {
	Parent    TaskID
	From      WorkerID
	SizeBytes int64
}

// Reason says why a worker was chosen, for logs and the live view.
type Reason string

const (
	ReasonLocal      Reason = "local"      // on a parent's worker: inputs handed over in /dev/shm
	ReasonEnv        Reason = "env"        // environment already installed
	ReasonLeastLoad  Reason = "least-load" // least loaded worker that fits
	ReasonBaselineLL Reason = "fifo-least" // Config.FIFO: least loaded, nothing else
)

// Placement is a decision of Next: run Task on Worker.
type Placement struct {
	Task   TaskID
	Kind   Kind
	Run    RunID
	Worker WorkerID
	// Attempt counts placements of the task, from 1: a task re-queued by
	// RemoveWorker is placed again with the next attempt. Done takes it
	// back so that a late result of an earlier attempt is refused.
	Attempt int
	Reserve Resources
	// Fetches are the inputs to copy onto Worker first; an input already
	// copied there for another child is not fetched again.
	Fetches []Fetch
	// NeedsEnv is true when Worker does not have the task's environment yet.
	NeedsEnv bool
	Reason   Reason
	// Waited is how long the task was ready before it was placed.
	Waited time.Duration
}

// Result reports the end of a placed task.
type Result struct {
	Task    TaskID
	Attempt int
	// Failed is a task that ended in error: its resources are released and
	// its children stay waiting until the run ends (EndRun).
	Failed bool
	// OutputBytes is the size of the output the task left in its worker's
	// /dev/shm, for the children placed elsewhere.
	OutputBytes int64
}

// Config tunes a Scheduler. Zero fields take the documented defaults.
type Config struct {
	// Now is the clock for Submit and UpsertWorker (time.Now by default);
	// a simulation passes its own.
	Now func() time.Time
	// DefaultFunction is the reservation of a function without
	// @resources (default 1 CPU, 512 MiB).
	DefaultFunction Resources
	// DefaultQuery is the reservation of a query (default 1 CPU, 1 GiB).
	DefaultQuery Resources
	// QueryPriority is where queries rank on the run priority scale
	// (default 40: above every run, 10, until a run's function has aged 30
	// steps).
	QueryPriority int
	// AgingStep is the wait that raises a ready task by one priority level
	// (default 10s), so that no task waits for ever behind newer ones.
	AgingStep time.Duration
	// HoldAfter is how long the first task in priority order may wait
	// without a fitting worker before the scheduler holds one for it: no
	// lower task is placed there until it fits (default 30s).
	HoldAfter time.Duration
	// BackfillDepth is how many tasks Next tries after the first that
	// does not fit (default 256), as a batch scheduler bounds its
	// backfill: under overload, one call costs at most that many scans of
	// the fleet; the tasks further down wait for the next call.
	BackfillDepth int
	// FIFO turns the policy off, for benchmarks: tasks in the order they
	// became ready, each on the least loaded worker that fits; no
	// locality, no environment preference, no priority, no holds.
	FIFO bool
}

// DefaultPriority is a run's priority when none is given.
const DefaultPriority = 5

// EnsureDefaults fills the zero fields of c.
func (c *Config) EnsureDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DefaultFunction == (Resources{}) {
		c.DefaultFunction = Resources{MilliCPUs: 1000, MemoryBytes: 512 << 20}
	}
	if c.DefaultQuery == (Resources{}) {
		c.DefaultQuery = Resources{MilliCPUs: 1000, MemoryBytes: 1 << 30}
	}
	if c.QueryPriority == 0 {
		c.QueryPriority = 40
	}
	if c.AgingStep == 0 {
		c.AgingStep = 10 * time.Second
	}
	if c.HoldAfter == 0 {
		c.HoldAfter = 30 * time.Second
	}
	if c.BackfillDepth == 0 {
		c.BackfillDepth = 256
	}
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	switch {
	case c.DefaultFunction.MilliCPUs < 0 || c.DefaultFunction.MemoryBytes < 0,
		c.DefaultQuery.MilliCPUs < 0 || c.DefaultQuery.MemoryBytes < 0:
		return errdefs.New(errdefs.ErrInvalidArgument, "scheduler: default reservations must not be negative")
	case c.QueryPriority < 0:
		return errdefs.New(errdefs.ErrInvalidArgument, "scheduler: QueryPriority %d must not be negative", c.QueryPriority)
	case c.AgingStep < 0 || c.HoldAfter < 0 || c.BackfillDepth < 0:
		return errdefs.New(errdefs.ErrInvalidArgument, "scheduler: AgingStep, HoldAfter and BackfillDepth must not be negative")
	}
	return nil
}
