// Package fleetlaunch places Python functions on the workers of a fleet.
//
// On the control plane, Launcher is a function.Launcher: the pipeline
// hands it an invocation as it would to the local launcher, and it
// places it with runtime/scheduler (a parent's worker first, so that the
// output stays in that worker's /dev/shm; then a worker with the
// environment; then the least loaded), sends it as a Task (task.go) through
// a fleet.Assigner, relays the worker's log lines and steps, and fetches
// the output back into the invocation's folder over Flight, since the
// pipeline materialises every output on the control plane.
//
// On a worker, Executor.Handle is the fleet.WorkHandler that runs a Task:
// it unpacks the run's code, builds the environment from the pinned
// requirements, gathers the inputs (hard links of outputs it holds, or
// DoGets from the worker or control plane holding them, once per worker),
// runs the invocation with the worker's own launcher and keeps the output
// in its /dev/shm, registered for handoff, until the run ends (Note).
//
// # Invariants
//
//   - An input file is located by its device and inode: the pipeline
//     hard-links and renames outputs, so a child's input is the same file
//     as the output the Launcher fetched. An input whose holder is gone
//     (or that the control plane made itself) is served by the control
//     plane (ticket worker fleet.ControlName, lease "").
//   - A task whose worker is lost runs again elsewhere, at most
//     Config.Retries more times; Result.Attempts counts the starts.
//   - Nothing of a task outlives it in a worker's ShmDir but its output
//     and the inputs it fetched, both kept for the run's other tasks until
//     the run ends; CleanLeftovers removes what a killed worker left.
//
// # Caveats
//
//   - Launcher.EndRun must be called when a run ends: until then the
//     scheduler keeps the run's tasks, the launcher the locations of its
//     outputs, and workers its intermediates.
//   - Each attempt is a task of its own for the scheduler, and a task's
//     inputs are parents it does not know (described by the worker holding
//     them): a lost worker's outputs are not run again, since the control
//     plane holds a copy of each and serves it instead.
//   - An input the control plane hands over is named by its inode and
//     size, so a file replaced by another of the same inode and size in
//     the same run would be taken for the one a worker already fetched.
//   - The run's code folder travels in every task (at most MaxCodeBytes
//     compressed); workers unpack it once per run.
package fleetlaunch
