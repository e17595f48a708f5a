package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/runner"
)

// Prepared is an invocation checked and turned into what a launcher starts:
// the interpreter command line and its environment. Every path in it is the
// same on the host and inside a container (launchers mount folders at their
// host paths).
type Prepared struct {
	Inv     Invocation
	CodeDir string
	Args    []string // interpreter first
	// Result is the runner's result file (in DataDir).
	Result string
	config string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Prepare validates inv. It returns ErrInvalidArgument for a malformed
// invocation.
func Prepare(inv Invocation) (*Prepared, error) {
	bad := func(format string, args ...any) error {
		return errdefs.New(errdefs.ErrInvalidArgument, "model %s: "+format, append([]any{inv.Model}, args...)...)
	}
	if inv.Env == nil || inv.Env.Python == nil {
		return nil, bad("no environment")
	}
	if !identRE.MatchString(inv.Function) {
		return nil, bad("invalid function name %q", inv.Function)
	}
	mod, err := filepath.Abs(inv.ModulePath)
	if err != nil || !strings.HasSuffix(mod, ".py") {
		return nil, bad("module %q is not a .py file", inv.ModulePath)
	}
	if _, err := os.Stat(mod); err != nil {
		return nil, bad("module %s: %v", inv.ModulePath, err)
	}
	name := strings.TrimSuffix(filepath.Base(mod), ".py")
	if !identRE.MatchString(name) {
		return nil, bad("module file name %q is not a Python identifier", filepath.Base(mod))
	}
	if inv.DataDir == "" || !filepath.IsAbs(inv.DataDir) {
		return nil, bad("data folder %q must be an absolute path", inv.DataDir)
	}
	if st, err := os.Stat(inv.DataDir); err != nil || !st.IsDir() {
		return nil, bad("data folder %s does not exist", inv.DataDir)
	}
	inside := func(p string) bool {
		return filepath.IsAbs(p) && strings.HasPrefix(filepath.Clean(p), filepath.Clean(inv.DataDir)+string(filepath.Separator))
	}
	if inv.Output != "" && !inside(inv.Output) {
		return nil, bad("output %s is not inside the data folder %s", inv.Output, inv.DataDir)
	}
	cfg := runner.Config{
		CodeDir:  filepath.Dir(mod),
		Module:   name,
		Function: inv.Function,
		Paths:    inv.Env.Paths(),
		Params:   inv.Params,
		Output:   inv.Output,
	}
	for _, in := range inv.Inputs {
		if !identRE.MatchString(in.Arg) {
			return nil, bad("invalid argument name %q", in.Arg)
		}
		if _, ok := inv.Params[in.Arg]; ok {
			return nil, bad("argument %s is both an input and a parameter", in.Arg)
		}
		if !inside(in.Path) {
			return nil, bad("input %s is not inside the data folder %s", in.Path, inv.DataDir)
		}
		cfg.Inputs = append(cfg.Inputs, runner.Input{Arg: in.Arg, Path: in.Path, Columns: in.Columns})
	}
	if inv.Memory < 0 || inv.Timeout < 0 {
		return nil, bad("negative memory limit or timeout")
	}
	f, err := os.CreateTemp(inv.DataDir, ".result-*.json")
	if err != nil {
		return nil, err
	}
	f.Close()
	cfg.Result = f.Name()
	enc, err := cfg.Encode()
	if err != nil {
		os.Remove(f.Name())
		return nil, bad("parameters are not JSON: %v", err)
	}
	return &Prepared{
		Inv:     inv,
		CodeDir: cfg.CodeDir,
		Args:    append([]string{inv.Env.Python.Path}, runner.Args()...),
		Result:  cfg.Result,
		config:  enc,
	}, nil
}

// Environ is the function's whole environment; nothing is inherited from
// the launcher. home is its writable scratch folder.
func (p *Prepared) Environ(home string) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"TMPDIR=" + home,
		"LANG=C.UTF-8",
		"PYTHONPATH=" + strings.Join(p.Inv.Env.Paths(), string(os.PathListSeparator)),
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONNOUSERSITE=1",
		runner.Env + "=" + p.config,
	}
}

// Cleanup removes the result file.
func (p *Prepared) Cleanup() { os.Remove(p.Result) }

// Exit describes how the interpreter ended, as the launcher saw it.
type Exit struct {
	Code     int
	Signal   syscall.Signal // 0 if it exited normally
	OOM      bool           // killed at its memory limit
	TimedOut bool           // killed at its timeout
}

// Finish turns the exit and the runner's result file into a Result or a
// *FunctionError.
func (p *Prepared) Finish(exit Exit, started time.Time) (*Result, error) {
	inv := p.Inv
	fe := &FunctionError{Model: inv.Model, ExitCode: exit.Code, Memory: inv.Memory, Timeout: inv.Timeout}
	switch {
	case exit.OOM:
		fe.Kind = FailureOutOfMemory
		return nil, fe
	case exit.TimedOut:
		fe.Kind = FailureTimeout
		return nil, fe
	}
	var res runner.Result
	b, err := os.ReadFile(p.Result)
	if err == nil && len(b) > 0 {
		err = json.Unmarshal(b, &res)
	} else if err == nil || errors.Is(err, fs.ErrNotExist) {
		err = errors.New("no result")
	}
	if exit.Signal != 0 {
		fe.Kind = FailureCrash
		fe.Signal = signalName(exit.Signal)
		return nil, fe
	}
	if err != nil {
		fe.Kind = FailureCrash
		return nil, fe
	}
	if !res.OK && res.Error != nil {
		fe.Kind = FailureException
		fe.Type, fe.Message, fe.Traceback = res.Error.Type, res.Error.Message, res.Error.Traceback
		return nil, fe
	}
	if !res.OK || exit.Code != 0 {
		fe.Kind = FailureCrash
		return nil, fe
	}
	return &Result{Output: res.Output, Rows: res.Rows, Expectation: res.Expectation, Duration: time.Since(started)}, nil
}

func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGSEGV: "SIGSEGV", syscall.SIGABRT: "SIGABRT", syscall.SIGKILL: "SIGKILL",
		syscall.SIGBUS: "SIGBUS", syscall.SIGILL: "SIGILL", syscall.SIGFPE: "SIGFPE",
		syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("%d (%s)", int(s), s)
}
