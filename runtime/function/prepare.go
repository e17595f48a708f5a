package function

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
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
	// marker is this invocation's token in the runner's step marker lines.
	marker string
	// step is the chain step running (0: the first function), as the
	// stdout LineWriter saw its markers.
	step atomic.Int32
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
		CodeDir:     filepath.Dir(mod),
		Module:      name,
		Function:    inv.Function,
		Paths:       inv.Env.Paths(),
		Params:      inv.Params,
		Output:      inv.Output,
		AwaitInputs: inv.InputsLater,
	}
	if len(inv.Then) > 0 {
		var token [8]byte
		rand.Read(token[:])
		cfg.Marker = hex.EncodeToString(token[:])
	}
	inputs := func(ins []Input, params map[string]any) ([]runner.Input, error) {
		var out []runner.Input
		for _, in := range ins {
			if !identRE.MatchString(in.Arg) {
				return nil, bad("invalid argument name %q", in.Arg)
			}
			if _, ok := params[in.Arg]; ok {
				return nil, bad("argument %s is both an input and a parameter", in.Arg)
			}
			if !inside(in.Path) {
				return nil, bad("input %s is not inside the data folder %s", in.Path, inv.DataDir)
			}
			out = append(out, runner.Input{Arg: in.Arg, Path: in.Path, Columns: in.Columns})
		}
		return out, nil
	}
	if cfg.Inputs, err = inputs(inv.Inputs, inv.Params); err != nil {
		return nil, err
	}
	if inv.PreviewRows > 0 && len(inv.Then) > 0 {
		cfg.Preview = inv.PreviewRows
		for i := range inv.Then {
			cfg.PreviewPaths = append(cfg.PreviewPaths, PreviewPath(inv.DataDir, i))
		}
	}
	from := inv.Model
	for _, st := range inv.Then {
		smod, err := filepath.Abs(st.ModulePath)
		if err != nil || filepath.Dir(smod) != cfg.CodeDir || !strings.HasSuffix(smod, ".py") {
			return nil, bad("chained function %s: module %q is not a .py file beside %s", st.Model, st.ModulePath, mod)
		}
		sname := strings.TrimSuffix(filepath.Base(smod), ".py")
		if !identRE.MatchString(st.Function) || !identRE.MatchString(sname) || !identRE.MatchString(st.Chain) {
			return nil, bad("chained function %s: invalid function, module or argument name (%q, %q, %q)", st.Model, st.Function, sname, st.Chain)
		}
		if _, ok := st.Params[st.Chain]; ok {
			return nil, bad("chained function %s: argument %s is both the chained table and a parameter", st.Model, st.Chain)
		}
		sins, err := inputs(st.Inputs, st.Params)
		if err != nil {
			return nil, err
		}
		for _, in := range sins {
			if in.Arg == st.Chain {
				return nil, bad("chained function %s: argument %s is both the chained table and an input", st.Model, st.Chain)
			}
		}
		cfg.Steps = append(cfg.Steps, runner.Step{Module: sname, Function: st.Function, Chain: st.Chain,
			ChainColumns: st.ChainColumns, ChainFrom: from, Inputs: sins, Params: st.Params})
		from = st.Model
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
		marker:  cfg.Marker,
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
		// pyarrow's allocator (mimalloc 3) asks for transparent huge pages
		// on its 1 GiB arenas. Where the kernel compacts memory for such
		// requests at fault time (defrag=madvise, the default), a function
		// allocating a few hundred MB stalls for up to a second on a
		// fragmented machine: measured 0.13-1.08 s for one 10M-row filter,
		// 0.23-0.32 s with ordinary pages.
		"MIMALLOC_ALLOW_THP=0",
		runner.Env + "=" + p.config,
	}
}

// LineWriter returns the writer for one stream of the function's output.
// In a fused chain it attributes lines to the running step's model and
// reports step starts (stdout) to Inv.OnStep.
func (p *Prepared) LineWriter(stream string) *LineWriter {
	w := NewLineWriter(p.Inv.Model, stream, p.Inv.Log)
	if len(p.Inv.Then) > 0 {
		w.marker = []byte(runner.StepMarker + p.marker + " ")
		w.step = func(i int, rows int64) bool {
			if i < 1 || i > len(p.Inv.Then) {
				return false
			}
			w.model = p.Inv.Then[i-1].Model
			if stream == "stdout" {
				p.step.Store(int32(i))
				if p.Inv.OnStep != nil {
					p.Inv.OnStep(i, rows)
				}
			}
			return true
		}
	}
	return w
}

// StepModel is the model of chain step i (0: the invocation's own).
func (p *Prepared) StepModel(i int) string {
	if i >= 1 && i <= len(p.Inv.Then) {
		return p.Inv.Then[i-1].Model
	}
	return p.Inv.Model
}

// Grant gives the user uid:gid, which the function runs as, its data
// folder, its result file and the further folders dirs (its scratch), all
// made by the launcher's user. restore gives the data folder back to its
// owner; what the function wrote in it stays the function user's, which
// the launcher (root) reads and removes all the same.
func (p *Prepared) Grant(uid, gid int, dirs ...string) (restore func(), err error) {
	st, err := os.Stat(p.Inv.DataDir)
	if err != nil {
		return nil, err
	}
	owner, _ := st.Sys().(*syscall.Stat_t)
	for _, path := range append([]string{p.Inv.DataDir, p.Result}, dirs...) {
		if err := os.Lchown(path, uid, gid); err != nil {
			return nil, fmt.Errorf("model %s: give %s to the function's user: %w", p.Inv.Model, path, err)
		}
	}
	return func() {
		if owner != nil {
			os.Lchown(p.Inv.DataDir, int(owner.Uid), int(owner.Gid))
		}
	}, nil
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
	// A chain's failure belongs to the function that was running.
	fe := &FunctionError{Model: p.StepModel(int(p.step.Load())), ExitCode: exit.Code, Memory: inv.Memory, Timeout: inv.Timeout}
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
		fe.Model = p.StepModel(res.Step)
		fe.Kind = FailureException
		fe.Type, fe.Message, fe.Traceback = res.Error.Type, res.Error.Message, res.Error.Traceback
		return nil, fe
	}
	if !res.OK || exit.Code != 0 {
		fe.Kind = FailureCrash
		return nil, fe
	}
	if len(res.StepRows) != len(inv.Then) {
		fe.Kind = FailureCrash
		return nil, fe
	}
	return &Result{Output: res.Output, Rows: res.Rows, Expectation: res.Expectation, StepRows: res.StepRows,
		Duration: time.Since(started)}, nil
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
