package fleetlaunch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
)

// TaskVersion is the Version of the tasks this build sends and runs.
const TaskVersion = 1

// Task is one function invocation (with the further functions of its
// fused chain) as the control plane sends it to a worker.
type Task struct {
	Version int    `json:"version"`
	Run     string `json:"run"`
	Model   string `json:"model"`
	// Module is the Python file, relative to the run's code folder (Code).
	Module   string         `json:"module"`
	Function string         `json:"function"`
	Params   map[string]any `json:"params,omitempty"`
	Inputs   []TaskInput    `json:"inputs,omitempty"`
	Then     []TaskStep     `json:"then,omitempty"`
	// Env is the environment pinned to what the control plane resolved.
	Env envcache.Spec `json:"env"`
	// Output: the function's table is kept and registered for handoff
	// (false for an expectation).
	Output         bool  `json:"output"`
	Memory         int64 `json:"memory,omitempty"`
	TimeoutMillis  int64 `json:"timeout_ms,omitempty"`
	InternetAccess bool  `json:"internet_access,omitempty"`
	PreviewRows    int   `json:"preview_rows,omitempty"`
	Code           Code  `json:"code"`
}

// TaskStep is a function of a fused chain after the first.
type TaskStep struct {
	Model        string         `json:"model"`
	Module       string         `json:"module"`
	Function     string         `json:"function"`
	Chain        string         `json:"chain"`
	ChainColumns []string       `json:"chain_columns,omitempty"`
	Inputs       []TaskInput    `json:"inputs,omitempty"`
	Params       map[string]any `json:"params,omitempty"`
}

// TaskInput binds argument Arg to an intermediate: one the worker holds
// itself (Local: the output of model Model of the run), or one it fetches
// with Ticket from the data plane at Addr (Holder is the worker named in
// the ticket; fleet.ControlName for the control plane, whose address the
// worker knows).
type TaskInput struct {
	Arg     string   `json:"arg"`
	Columns []string `json:"columns,omitempty"`
	Model   string   `json:"model"`
	Local   bool     `json:"local,omitempty"`
	Holder  string   `json:"holder,omitempty"`
	Addr    string   `json:"addr,omitempty"`
	Ticket  []byte   `json:"ticket,omitempty"`
}

// Code is the run's code folder as a gzipped tar; Hash (hex sha256 of
// Tar) names it in a worker's cache.
type Code struct {
	Hash string `json:"hash"`
	Tar  []byte `json:"tar"`
}

// TaskResult is a worker's answer: exactly one of Done, Failure and Error.
type TaskResult struct {
	Done    *Done          `json:"done,omitempty"`
	Failure *FunctionError `json:"failure,omitempty"`
	Error   *TaskError     `json:"error,omitempty"`
}

// Done is a function that returned.
type Done struct {
	// Output: the table is held by the worker under (Run, last model).
	Output         bool    `json:"output"`
	OutputBytes    int64   `json:"output_bytes,omitempty"`
	Rows           int64   `json:"rows"`
	Expectation    *bool   `json:"expectation,omitempty"`
	StepRows       []int64 `json:"step_rows,omitempty"`
	DurationMillis int64   `json:"duration_ms"`
}

// FunctionError is a function.FunctionError on the wire.
type FunctionError struct {
	Model         string               `json:"model"`
	Kind          function.FailureKind `json:"kind"`
	Type          string               `json:"type,omitempty"`
	Message       string               `json:"message,omitempty"`
	Traceback     string               `json:"traceback,omitempty"`
	Signal        string               `json:"signal,omitempty"`
	ExitCode      int                  `json:"exit_code,omitempty"`
	Memory        int64                `json:"memory,omitempty"`
	TimeoutMillis int64                `json:"timeout_ms,omitempty"`
}

func wireFailure(e *function.FunctionError) *FunctionError {
	return &FunctionError{Model: e.Model, Kind: e.Kind, Type: e.Type, Message: e.Message, Traceback: e.Traceback,
		Signal: e.Signal, ExitCode: e.ExitCode, Memory: e.Memory, TimeoutMillis: e.Timeout.Milliseconds()}
}

func (e *FunctionError) native() *function.FunctionError {
	return &function.FunctionError{Model: e.Model, Kind: e.Kind, Type: e.Type, Message: e.Message, Traceback: e.Traceback,
		Signal: e.Signal, ExitCode: e.ExitCode, Memory: e.Memory, Timeout: time.Duration(e.TimeoutMillis) * time.Millisecond}
}

// TaskError is a task the worker could not run (its environment, its
// code, an input). Class is the errdefs class name; Retry marks an input
// the worker could not get, which the control plane then serves itself.
type TaskError struct {
	Class   string `json:"class"`
	Message string `json:"message"`
	Retry   bool   `json:"retry,omitempty"`
}

// Event is what a worker sends while a task runs: a log line, or the
// start of step I of a chain with the rows it receives and the preview of
// the table (function.PreviewPath of I-1), if small.
type Event struct {
	Log     *function.LogLine `json:"log,omitempty"`
	Step    int               `json:"step,omitempty"`
	Rows    int64             `json:"rows,omitempty"`
	Preview []byte            `json:"preview,omitempty"`
}

// Note is what the control plane broadcasts to workers: EndRun names a
// run that ended, whose intermediates and files they drop.
type Note struct {
	EndRun string `json:"end_run,omitempty"`
}

// DecodeTask parses and checks a task; errors are
// errdefs.ErrInvalidArgument.
func DecodeTask(raw json.RawMessage) (*Task, error) {
	var t Task
	// Numbers stay as the control plane wrote them: a parameter 2 is an
	// int for the function, not 2.0.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&t); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "malformed task: %v", err)
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

func (t *Task) validate() error {
	bad := func(format string, args ...any) error {
		return errdefs.New(errdefs.ErrInvalidArgument, "malformed task: "+format, args...)
	}
	switch {
	case t.Version != TaskVersion:
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "run the same lakehouse version on the control plane and its workers",
			"task version %d, this worker runs version %d", t.Version, TaskVersion)
	case t.Run == "" || t.Model == "" || t.Function == "":
		return bad("no run, model or function")
	case len(t.Code.Tar) == 0 || t.Code.Hash == "" || strings.ContainsAny(t.Code.Hash, "/.\\"):
		return bad("no code")
	}
	if err := t.Env.Validate(); err != nil {
		return bad("environment: %v", err)
	}
	if err := validModule(t.Module); err != nil {
		return err
	}
	check := func(ins []TaskInput) error {
		for _, in := range ins {
			if in.Arg == "" || in.Model == "" || (!in.Local && (len(in.Ticket) == 0 || in.Holder == "")) {
				return bad("input %q of %s has no source", in.Arg, t.Model)
			}
		}
		return nil
	}
	if err := check(t.Inputs); err != nil {
		return err
	}
	for _, s := range t.Then {
		if s.Model == "" || s.Function == "" || s.Chain == "" {
			return bad("a chain step has no model, function or chained argument")
		}
		if err := validModule(s.Module); err != nil {
			return err
		}
		if err := check(s.Inputs); err != nil {
			return err
		}
	}
	return nil
}

func validModule(m string) error {
	if m == "" || path.IsAbs(m) || path.Clean(m) != m || m == ".." || strings.HasPrefix(m, "../") {
		return errdefs.New(errdefs.ErrInvalidArgument, "malformed task: module %q is not a path inside the code folder", m)
	}
	return nil
}

// lastModel is the model whose table a task outputs.
func (t *Task) lastModel() string {
	if n := len(t.Then); n > 0 {
		return t.Then[n-1].Model
	}
	return t.Model
}

// pinned is the environment of inv pinned to the versions it holds: the
// worker installs exactly these (the lakehouse SDK it adds itself).
func pinned(env *envcache.Environment) (envcache.Spec, error) {
	if env == nil || env.Python == nil {
		return envcache.Spec{}, errdefs.New(errdefs.ErrInvalidArgument, "invocation without an environment")
	}
	v := env.Python.Version
	if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
		v = parts[0] + "." + parts[1]
	}
	spec := envcache.Spec{Python: v}
	for _, p := range env.Packages {
		if p.Name == envcache.SDKName {
			continue
		}
		spec.Requirements = append(spec.Requirements, p.Name+"=="+p.Version)
	}
	return spec, nil
}

// relModule is path relative to the code folder dir.
func relModule(dir, p string) (string, error) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errdefs.New(errdefs.ErrInvalidArgument, "module %s is not in the code folder %s", p, dir)
	}
	return filepath.ToSlash(rel), nil
}

func errorResult(err error, retry bool) TaskResult {
	return TaskResult{Error: &TaskError{Class: errdefs.ClassName(err), Message: err.Error(), Retry: retry}}
}

// err is the control plane's error for a TaskError.
func (e *TaskError) err(model, worker string) error {
	class := errdefs.ErrInternal
	for _, c := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument, errdefs.ErrConflict,
		errdefs.ErrFailedPrecondition, errdefs.ErrUnavailable, errdefs.ErrPermissionDenied} {
		if errdefs.ClassName(c) == e.Class {
			class = c
		}
	}
	return errdefs.New(class, "%s on worker %s: %s", model, worker, e.Message)
}

func (e *TaskError) String() string { return fmt.Sprintf("%s: %s", e.Class, e.Message) }
