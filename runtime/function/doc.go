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
// its data folder (read-write).
package function
