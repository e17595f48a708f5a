package fleet

import (
	"context"
	"encoding/json"
	"errors"
)

// Work placed on workers. The control plane gives a worker a task (one
// function invocation, its JSON defined by runtime/fleetlaunch) over a
// stream the worker opened (workers dial out; they may sit behind NAT):
// flight.WorkHub on the control plane, flight.ServeWork on the worker.
// While the task runs the worker sends events (log lines, steps) on the
// same stream, then one result. The stream belongs to one lease: when it
// breaks, or the lease dies (the worker missed its heartbeats), every task
// of it ends on the control plane with ErrWorkerLost, the worker cancels
// them (nothing of them outlives the stream), and a result the worker
// sends later is refused. The control plane then places the task again,
// elsewhere.

// ErrWorkerLost ends a task whose worker went away (its stream broke or
// its lease died) before the task's result came. The task may be placed
// again: functions are pure given their inputs and parameters. Test with
// errors.Is.
var ErrWorkerLost = errors.New("worker lost")

// ControlName is the worker name in the handoff tickets of intermediates
// the control plane itself holds (inputs it scanned, outputs of SQL
// models): a worker fetches them from the control plane it joined.
const ControlName = "@control"

// WorkHandler runs one task on a worker: task is the control plane's JSON,
// emit sends an event back while it runs (safe for concurrent use), and
// the result is the JSON sent back when it ends. An error is for the
// transport (a malformed task, a worker shutting down); a function that
// fails is a result like any other. ctx ends when the control plane
// cancels the task or the stream breaks: the handler must then stop
// everything it started before it returns.
type WorkHandler func(ctx context.Context, task json.RawMessage, emit func(event json.RawMessage)) (result json.RawMessage, err error)

// Assigner gives tasks to workers: flight.WorkHub on the control plane.
type Assigner interface {
	// Assign runs task on the worker named under its lease and returns
	// the handler's result; onEvent receives the task's events in order
	// (from one goroutine). It returns an error wrapping ErrWorkerLost if
	// the worker has no stream open under lease, or loses it, before the
	// result comes; ctx's error if ctx ends first (the worker is told to
	// cancel the task); a handler's error as the errdefs error it was.
	Assign(ctx context.Context, worker, lease string, task json.RawMessage, onEvent func(event json.RawMessage)) (json.RawMessage, error)
	// Broadcast sends note to every connected worker, best effort (the
	// end of a run, so that workers drop its intermediates).
	Broadcast(note json.RawMessage)
}
