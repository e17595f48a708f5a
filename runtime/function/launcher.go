package function

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
)

// Launcher starts one function invocation and waits for it.
type Launcher interface {
	// Name is "process" or "containerd".
	Name() string
	// Launch runs inv to completion. It returns a *FunctionError when the
	// function failed (exception, out of memory, timeout, crash),
	// ErrInvalidArgument for a malformed invocation, and ctx.Err() when ctx
	// ended first. Nothing of the invocation (process, container, scratch
	// space) outlives Launch.
	Launch(ctx context.Context, inv Invocation) (*Result, error)
	// Close releases the launcher's connections.
	Close() error
}

// Invocation is one call of a Python function.
type Invocation struct {
	// Model names the function in logs and errors.
	Model string
	// Run is the id of the run the invocation belongs to ("" outside a
	// run); a fleet launcher keys the intermediates it hands over by it.
	Run string
	// CPUs is the model's @resources(cpus=) (0: the default), for a
	// launcher that places functions on a fleet.
	CPUs float64
	// Env is the assembled environment (interpreter and package folders).
	Env *envcache.Environment
	// ModulePath is the user's Python file (e.g. /proj/models.py); its
	// folder is importable and mounted read-only.
	ModulePath string
	// Function is the name of the function in that module.
	Function string
	// Inputs bind function arguments to Arrow IPC files in DataDir.
	Inputs []Input
	// Params are further keyword arguments (JSON values).
	Params map[string]any
	// DataDir is the invocation's shared-memory folder (under /dev/shm):
	// inputs are read from it and Output is written into it. It is the
	// only writable host folder the function sees.
	DataDir string
	// Output is the Arrow IPC file the function's result is written to,
	// inside DataDir; "" if the function returns nothing.
	Output string
	// Memory is the memory limit in bytes (0: none).
	Memory int64
	// Timeout bounds the run (0: none beyond ctx).
	Timeout time.Duration
	// InternetAccess lets the function open network connections; without
	// it a function has a network namespace of its own (only a loopback
	// interface, down) and, with the process launcher, no TCP at all
	// (Landlock).
	InternetAccess bool
	// Log receives stdout and stderr line by line while the function runs
	// (nil: discarded). It is called from several goroutines, one line at
	// a time per stream.
	Log LogSink
	// InputsLater: input files may appear after the launch (each linked
	// complete); the interpreter starts, imports pyarrow and the module,
	// then waits for each file before reading it.
	InputsLater bool
	// Then are further functions run by the same interpreter after this
	// one, in order (a fused chain): each receives the previous one's
	// result as a pyarrow Table, so no table between them is written or
	// read. Output then receives the last one's result. Lines are
	// attributed to the model of the function printing them, and a
	// failure to the function that failed.
	Then []Step
	// OnStep is called when Then[i-1] starts (i >= 1) with the rows of the
	// table it receives, from the goroutine reading stdout.
	OnStep func(i int, rows int64)
	// PreviewRows > 0 writes the first rows of each table passed along a
	// chain to PreviewPath(DataDir, i) (i: the function that returned it,
	// 0 the first) before the next function starts.
	PreviewRows int
}

// PreviewPath is where an invocation's chain writes the first rows of
// function i's result (see Invocation.PreviewRows).
func PreviewPath(dataDir string, i int) string {
	return filepath.Join(dataDir, fmt.Sprintf(".preview-%d.arrow", i))
}

// Step is a function of a fused chain after the first.
type Step struct {
	Model string
	// ModulePath is its Python file, in the same folder as the
	// invocation's ModulePath.
	ModulePath string
	Function   string
	// Chain is the argument bound to the previous function's result;
	// ChainColumns, if set, are the columns it sees.
	Chain        string
	ChainColumns []string
	// Inputs and Params are its further arguments (files in DataDir).
	Inputs []Input
	Params map[string]any
}

// Input binds the function argument Arg to the Arrow IPC file Path.
type Input struct {
	Arg  string
	Path string
	// Columns, if set, are the columns the function sees (selected from
	// the mapped table without copying).
	Columns []string
}

// LogSink receives one line of a function's output.
type LogSink func(LogLine)

// LogLine is one line of stdout or stderr, without its newline.
type LogLine struct {
	Model  string
	Stream string // "stdout" or "stderr"
	Text   string
	Time   time.Time
}

// Result is a successful invocation.
type Result struct {
	// Output is the Arrow IPC file written ("" if the function returned
	// None or a bool).
	Output string
	Rows   int64
	// Expectation is the bool an expectation function returned.
	Expectation *bool
	// StepRows are the rows each function of a fused chain but the last
	// returned (Then: the first function's, then Then[0]'s, ...).
	StepRows []int64
	// Duration is the wall time from Launch to exit.
	Duration time.Duration
	// Worker is the fleet worker that ran the invocation ("" when it ran
	// here); Attempts is how many times it was started (more than 1 when
	// a worker was lost and it ran again elsewhere).
	Worker   string
	Attempts int
}

// FailureKind says how a function failed.
type FailureKind string

const (
	// FailureException: the function raised; Type, Message and Traceback
	// describe it.
	FailureException FailureKind = "exception"
	// FailureOutOfMemory: killed at its memory limit.
	FailureOutOfMemory FailureKind = "out_of_memory"
	// FailureTimeout: killed at its timeout.
	FailureTimeout FailureKind = "timeout"
	// FailureCrash: the interpreter died of a signal (Signal) or exited
	// without writing a result (ExitCode).
	FailureCrash FailureKind = "crash"
)

// FunctionError is a failed function. It carries no errdefs class: the CLI
// maps it to exit code 1 (a failed run).
type FunctionError struct {
	Model     string
	Kind      FailureKind
	Type      string // exception class
	Message   string
	Traceback string // user frames only
	Signal    string // e.g. "SIGSEGV"
	ExitCode  int
	Memory    int64
	Timeout   time.Duration
}

func (e *FunctionError) Error() string {
	switch e.Kind {
	case FailureOutOfMemory:
		return fmt.Sprintf("model %s exceeded its memory limit of %s", e.Model, FormatBytes(e.Memory))
	case FailureTimeout:
		return fmt.Sprintf("model %s timed out after %s and was killed", e.Model, e.Timeout)
	case FailureCrash:
		if e.Signal != "" {
			return fmt.Sprintf("model %s crashed: the interpreter was killed by signal %s", e.Model, e.Signal)
		}
		return fmt.Sprintf("model %s crashed: the interpreter exited with status %d without a result", e.Model, e.ExitCode)
	default:
		return fmt.Sprintf("model %s failed: %s: %s", e.Model, e.Type, e.Message)
	}
}

// FormatBytes renders n as people write memory limits: 512 MiB, 2 GiB.
func FormatBytes(n int64) string {
	const (
		ki = 1 << 10
		mi = 1 << 20
		gi = 1 << 30
	)
	switch {
	case n >= gi && n%gi == 0:
		return fmt.Sprintf("%d GiB", n/gi)
	case n >= gi:
		return fmt.Sprintf("%.1f GiB", float64(n)/gi)
	case n >= mi && n%mi == 0:
		return fmt.Sprintf("%d MiB", n/mi)
	case n >= mi:
		return fmt.Sprintf("%.1f MiB", float64(n)/mi)
	case n >= ki:
		return fmt.Sprintf("%d KiB", n/ki)
	default:
		return fmt.Sprintf("%d B", n)
	}
}
