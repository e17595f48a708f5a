// Package function is the contract between the runtime and a function
// launcher (the runtime itself is runtime/pipeline and runtime/query): the
// Launcher interface, the Invocation a launcher runs, the Result or
// *FunctionError it returns, and the helpers both launchers share
// (Prepare: validation and the runner's command line and environment;
// LineWriter: stdout/stderr forwarded line by line, tagged with the model
// name).
//
// Launchers: runtime/process (a plain child process) and
// runtime/containerd (one container per invocation); runtime/launchers picks
// one; runtime/runner is the Python program the interpreter runs;
// runtime/launchertest is the suite both pass.
//
// Invariants: nothing of an invocation (process, container, scratch space,
// result file) outlives Launch; every path in an invocation is the same on
// the host and inside a container; the function sees only its interpreter,
// its package folders (read-only), the folder of its module (read-only) and
// its data folder (read-write), plus a scratch folder; it runs as an
// unprivileged user that owns none of them but its data and scratch
// folders (Prepared.Grant), cannot change its package folders even with
// chmod, sees only its own processes, and reaches the network only with
// InternetAccess. runtime/launchertest's hostile suite checks each of these
// on every launcher.
package function
