// Package runner ships the Python program that runs a user function inside
// its environment. Launchers start it as
//
//	<interpreter> -s -S -u -B -c <Source>
//
// with the invocation in $LAKEHOUSE_INVOCATION (see Config.Encode) and the
// package folders on PYTHONPATH. -s and -S keep the interpreter's own
// site-packages (and the user's) off sys.path; the runner processes .pth
// files of the package folders itself. -u makes stdout and stderr
// unbuffered so that lines reach the log sink as they are printed.
package runner

import (
	"bytes"
	_ "embed"
	"encoding/json"
)

// Source is the runner program.
//
//go:embed runner.py
var Source string

// Env is the environment variable that carries the Config.
const Env = "LAKEHOUSE_INVOCATION"

// Args are the interpreter arguments that run the runner.
func Args() []string { return []string{"-s", "-S", "-u", "-B", "-c", Source} }

// Input is one input table: the function argument it binds and the Arrow
// IPC file holding it.
type Input struct {
	Arg     string   `json:"arg"`
	Path    string   `json:"path"`
	Columns []string `json:"columns,omitempty"`
}

// Config is the invocation as the runner reads it; every path is as seen by
// the function (inside the container for the containerd launcher).
type Config struct {
	CodeDir  string         `json:"code_dir"`
	Module   string         `json:"module"`
	Function string         `json:"function"`
	Paths    []string       `json:"paths"`
	Inputs   []Input        `json:"inputs"`
	Params   map[string]any `json:"params"`
	Output   string         `json:"output,omitempty"`
	Result   string         `json:"result"`
	// AwaitInputs: wait for input files to appear.
	AwaitInputs bool `json:"await_inputs,omitempty"`
	// Steps are further functions run after this one (a fused chain).
	Steps []Step `json:"steps,omitempty"`
	// Preview > 0: the first Preview rows of the table function i of the
	// chain returns are written to PreviewPaths[i] (one path per table
	// passed along).
	Preview      int      `json:"preview,omitempty"`
	PreviewPaths []string `json:"preview_paths,omitempty"`
	// Marker is this invocation's token in step marker lines, so that a
	// line the user's code prints cannot pass for one.
	Marker string `json:"marker,omitempty"`
}

// Step is a function of a fused chain after the first: it receives the
// previous function's result as argument Chain.
type Step struct {
	Module       string         `json:"module"`
	Function     string         `json:"function"`
	Chain        string         `json:"chain"`
	ChainColumns []string       `json:"chain_columns,omitempty"`
	ChainFrom    string         `json:"chain_from"` // the model whose result it is
	Inputs       []Input        `json:"inputs"`
	Params       map[string]any `json:"params"`
}

// StepMarker starts the line the runner prints on stdout and stderr when
// step i (1-based) of a chain starts: StepMarker + "<marker> <i> <rows>",
// marker being Config.Marker and rows those of the table step i receives.
const StepMarker = "\x1elakehouse-step "

func encodeInputs(ins []Input) []any {
	out := make([]any, len(ins))
	for i, in := range ins {
		m := map[string]any{"arg": in.Arg, "path": in.Path}
		if in.Columns != nil {
			m["columns"] = in.Columns
		}
		out[i] = m
	}
	return out
}

func encodeParams(ps map[string]any) map[string]any {
	params := map[string]any{}
	for k, v := range ps {
		params[k] = normalizeJSON(v)
	}
	return params
}

// Encode renders c for Env (hex-encoded Python marshal data).
func (c Config) Encode() (string, error) {
	steps := make([]any, len(c.Steps))
	for i, st := range c.Steps {
		m := map[string]any{"module": st.Module, "function": st.Function, "chain": st.Chain, "chain_from": st.ChainFrom,
			"inputs": encodeInputs(st.Inputs), "params": encodeParams(st.Params)}
		if st.ChainColumns != nil {
			m["chain_columns"] = st.ChainColumns
		}
		steps[i] = m
	}
	return encodeMarshal(map[string]any{
		"code_dir": c.CodeDir, "module": c.Module, "function": c.Function,
		"paths": c.Paths, "inputs": encodeInputs(c.Inputs), "params": encodeParams(c.Params),
		"output": c.Output, "result": c.Result, "steps": steps,
		"preview": c.Preview, "preview_paths": c.PreviewPaths, "await_inputs": c.AwaitInputs, "marker": c.Marker,
	})
}

// normalizeJSON turns any JSON-encodable value into the plain types
// encodeMarshal knows, through a JSON round trip when needed.
func normalizeJSON(v any) any {
	switch v.(type) {
	case nil, bool, int, int32, int64, float64, float32, string, []string:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v // encodeMarshal reports it
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // integers stay integers
	var out any
	if dec.Decode(&out) != nil {
		return v
	}
	return numbers(out)
}

// numbers replaces json.Numbers by int64 or float64.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = numbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbers(x[k])
		}
	}
	return v
}

// Result is the JSON the runner writes to Config.Result.
type Result struct {
	OK          bool   `json:"ok"`
	Rows        int64  `json:"rows"`
	Output      string `json:"output"`
	Expectation *bool  `json:"expectation"`
	// StepRows are the rows of each chained function's result but the
	// last; Step is the (0-based) function that failed.
	StepRows []int64 `json:"steps"`
	Step     int     `json:"step"`
	Error    *struct {
		Type      string `json:"type"`
		Message   string `json:"message"`
		Traceback string `json:"traceback"`
	} `json:"error"`
}
