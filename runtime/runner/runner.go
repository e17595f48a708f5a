// Package runner ships the Python program that runs a user function inside
// its environment. Launchers start it as
//
//	<interpreter> -s -S -u -B -c <Source>
//
// with the invocation as JSON in $LAKEHOUSE_INVOCATION (see Config) and the
// package folders on PYTHONPATH. -s and -S keep the interpreter's own
// site-packages (and the user's) off sys.path; the runner processes .pth
// files of the package folders itself. -u makes stdout and stderr
// unbuffered so that lines reach the log sink as they are printed.
package runner

import (
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
	Arg  string `json:"arg"`
	Path string `json:"path"`
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
}

// Encode renders c for Env.
func (c Config) Encode() (string, error) {
	b, err := json.Marshal(c)
	return string(b), err
}

// Result is the JSON the runner writes to Config.Result.
type Result struct {
	OK          bool   `json:"ok"`
	Rows        int64  `json:"rows"`
	Output      string `json:"output"`
	Expectation *bool  `json:"expectation"`
	Error       *struct {
		Type      string `json:"type"`
		Message   string `json:"message"`
		Traceback string `json:"traceback"`
	} `json:"error"`
}
