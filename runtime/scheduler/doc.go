// Package scheduler decides where the tasks of a fleet run: a run's
// functions and interactive queries, on the workers that joined the
// control plane. It is pure: no I/O, no goroutines, no clock of its own
// (every call that depends on time takes it, and Config.Now serves
// Submit), so the control plane and a simulated fleet drive the same code.
//
// The control plane feeds it worker heartbeats (UpsertWorker), drops
// workers that stopped heartbeating (RemoveWorker), submits tasks with
// their parents (Submit), asks for placements (Next) and reports results
// (Done). It is not safe for concurrent use; the caller holds one lock.
//
// # Policy
//
// Next walks the ready tasks in priority order and gives each the best
// worker that fits it now:
//
//  1. a worker that already holds its inputs (a parent ran there, or an
//     input was copied there for a sibling): the output is handed over in
//     /dev/shm, and the one holding the most input bytes wins;
//  2. else a worker with the task's environment already installed;
//  3. else the least loaded worker (the larger of its reserved shares of
//     CPU and memory).
//
// Ties go to the environment, then the least load, then the name. An
// environment counts as installed on a worker from the moment a task that
// needs it is placed there, so the next tasks of that environment follow
// it instead of installing it elsewhere. Inputs
// that live on another worker are listed in Placement.Fetches; a fan-out
// copies a parent's output to a worker once, and later children there
// read the copy.
//
// Priority: queries rank at Config.QueryPriority (40), above every run
// (1-10, default 5); a ready task gains one level per Config.AgingStep it
// waits, so nothing waits for ever behind newer tasks. Within a level,
// first ready, first placed.
//
// # Invariants
//
//   - No overcommit: the reservations placed on a worker, plus those of
//     the tasks it reports running that the scheduler did not place, never
//     exceed its cores and memory; the inputs routed to it never exceed
//     its free /dev/shm.
//   - Parents before children: a task becomes ready when every parent the
//     scheduler knows is done.
//   - Every task that fits some live worker is placed eventually, as long
//     as running tasks end: aging brings it first in priority order, and
//     once the first task that does not fit has waited Config.HoldAfter
//     while smaller tasks after it were placed (backfill), a worker large
//     enough for it is held (nothing else placed there) until it fits. A task larger than every live worker is refused by Submit,
//     naming the resource; Stuck lists those left so by departed workers.
//   - A result is taken once: Done refuses a task that is not running, or
//     an attempt that is not the current one (a worker dropped after a
//     partition and come back late).
//
// # Caveats
//
// Under overload Next tries at most Config.BackfillDepth tasks after the
// first that does not fit, and skips a task whose reservation is no
// smaller than one that already fit nowhere in the same call: a call
// costs at most that many scans of the fleet, and tasks further down wait
// for the next call. The clock passed to Next, Done and Config.Now must
// not go back (the ready lists are kept in readiness order; a clock that
// goes back still works, at the cost of an insertion).
//
// Reservations are what the tasks declare (@resources, else the Config
// defaults), not what they use. A done task's output location is
// remembered only while a child still waits for it; a parent unknown to
// the scheduler (done before a control plane restart) is described in
// Task.Parents by where its output lives, and copies of it are not
// remembered. Config.FIFO turns the policy off, for the benchmark
// baseline only.
package scheduler
