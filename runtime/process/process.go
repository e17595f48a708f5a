// Package process is the launcher that runs a function as a plain child
// process: for laptops and machines without containerd.
//
// The child is the real interpreter with the runner, a clean environment
// (PYTHONPATH = the package folders; -s -S keep every site-packages off
// sys.path), its own process group, a scratch HOME/TMPDIR removed afterwards,
// and the same timeout as in a container.
//
// Isolation (Config.Isolation auto, the default). The launcher starts the
// function's init: this program again, taken over by a C constructor
// before the Go runtime starts (init_linux.c), which executes the sandbox
// the launcher planned (spec.go), starts the interpreter and waits for it:
//   - as root: new mount, PID, IPC and, without internet access, network
//     namespaces; the function runs as Config.UID/GID (default 65534,
//     nobody), owns only its scratch and data folders, and sees a /proc of
//     its own PID namespace. Package folders, the interpreter and the code
//     folder are bound read-only (even chmod fails); a folder the
//     function needs under one closed to it (an interpreter in /root) is
//     bound back on a tmpfs that hides the rest.
//   - not root, where unprivileged user namespaces exist: the same
//     namespaces inside a user namespace, with no capabilities.
//   - always, where the kernel has Landlock: reading only the interpreter,
//     the system libraries, the package folders, the code folder and the
//     data folder; writing only the scratch and data folders; no TCP
//     without internet access; no signals to processes outside.
//   - always: a seccomp filter that fails what a data function never needs
//     (ptrace, mount, namespaces, modules, bpf, keys, ...) with EPERM.
//
// When the init (PID 1 of the namespace) ends, the kernel kills every
// process left in it: nothing a function starts outlives its run. Where the
// machine offers neither root, user namespaces nor Landlock, Launch refuses
// to run functions unless Isolation is none.
//
// Limits, compared with the containerd launcher:
//   - Memory: a watchdog samples the interpreter's resident set every
//     PollInterval and kills the function above the limit, so a fast
//     allocator can overshoot by what it allocates in one interval, and
//     memory of the function's own child processes is not counted.
//   - Without namespaces (Landlock only, or isolation none) a daemon the
//     function detaches from its process group survives the run.
//   - Landlock alone (not root, no user namespaces): the function runs as
//     the launcher's user, who owns the package folders. Landlock keeps it
//     from writing them, not from chmod (no Landlock right covers it);
//     the folder's stamp catches that, and environments refuse the folder
//     until `lakehouse env verify --fix`. It gets no /proc.
package process

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/proc"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
)

// DefaultUID is the user (and group) functions run as when the launcher
// is root: nobody.
const DefaultUID = 65534

// Config configures the process launcher.
type Config struct {
	// ScratchDir is where per-invocation scratch folders are made
	// (default os.TempDir()).
	ScratchDir string
	// PollInterval is the memory watchdog's period (default 20ms).
	PollInterval time.Duration
	// Isolation is IsolationAuto (default) or IsolationNone.
	Isolation string
	// UID and GID are the user and group functions run as when the
	// launcher is root (default DefaultUID). They must own nothing the
	// function may not change.
	UID, GID int
	// Init is the program started as the function's init (default this
	// program, /proc/self/exe). It must be a lakehouse binary built with
	// cgo: the init is its C constructor (init_linux.c), which runs
	// before the Go runtime. Benchmarks set it to measure the lakehouse
	// binary from a test binary.
	Init string
}

// Launcher runs functions as child processes.
type Launcher struct {
	cfg Config
	// support is what the machine offers (Probe; tests force a path).
	support func() Support
}

var _ function.Launcher = (*Launcher)(nil)

// New returns a process launcher.
func New(cfg Config) *Launcher {
	if cfg.ScratchDir == "" {
		cfg.ScratchDir = os.TempDir()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.Isolation == "" {
		cfg.Isolation = IsolationAuto
	}
	if cfg.UID <= 0 {
		cfg.UID = DefaultUID
	}
	if cfg.GID <= 0 {
		cfg.GID = DefaultUID
	}
	if cfg.Init == "" {
		cfg.Init = selfExe
	}
	return &Launcher{cfg: cfg, support: Probe}
}

// Name is "process".
func (l *Launcher) Name() string { return "process" }

// Close does nothing.
func (l *Launcher) Close() error { return nil }

// ScratchPrefix starts the name of every scratch folder a launcher in
// process pid makes (in Config.ScratchDir): a reaper removes those of a
// killed process.
func ScratchPrefix(pid int) string { return "lakehouse-fn-" + strconv.Itoa(pid) + "-" }

// RemoveLeftovers removes the scratch folders in dir (default
// os.TempDir()) of launchers whose process is gone: one killed with its
// functions running (a worker killed mid-task) has no reaper of its own.
// A folder whose process runs, or may (its pid is in use again), stays.
func RemoveLeftovers(dir string) {
	if dir == "" {
		dir = os.TempDir()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "lakehouse-fn-")
		if !ok || !e.IsDir() {
			continue
		}
		pid, _, ok := strings.Cut(rest, "-")
		n, err := strconv.Atoi(pid)
		if !ok || err != nil || n <= 0 || proc.Running(n) {
			continue
		}
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// Launch runs inv as a child process. It returns ErrFailedPrecondition
// when the machine cannot isolate functions and Isolation is auto.
func (l *Launcher) Launch(ctx context.Context, inv function.Invocation) (*function.Result, error) {
	started := time.Now()
	m, err := modeFor(l.cfg.Isolation, l.support())
	if err != nil {
		return nil, err
	}
	p, err := function.Prepare(inv)
	if err != nil {
		return nil, err
	}
	defer p.Cleanup()
	scratch, err := os.MkdirTemp(l.cfg.ScratchDir, ScratchPrefix(os.Getpid()))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)

	var (
		cmd    *exec.Cmd
		status *os.File // the init's status pipe
		life   *os.File // our end of its lifeline
	)
	if m.sandboxed() {
		sb, err := l.sandboxFor(p, scratch, m)
		if err != nil {
			return nil, err
		}
		if m.dropUser {
			restore, err := p.Grant(l.cfg.UID, l.cfg.GID, scratch)
			if err != nil {
				return nil, err
			}
			defer restore()
		}
		cmd, status, life, err = sb.command(inv.InternetAccess)
		if err != nil {
			return nil, err
		}
		defer status.Close()
		defer life.Close()
	} else {
		cmd = exec.Command(p.Args[0], p.Args[1:]...)
		cmd.Env = p.Environ(scratch)
		cmd.Dir = scratch
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if os.Geteuid() == 0 && !inv.InternetAccess {
			// A network namespace of its own, with only a loopback
			// interface (down): no connection leaves the function.
			cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
		}
	}
	stdout := p.LineWriter("stdout")
	stderr := p.LineWriter("stderr")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A process whose output pipes stay open (a grandchild) must not hold
	// Wait forever after the interpreter exits.
	cmd.WaitDelay = time.Second

	var (
		mu       sync.Mutex
		oom      bool
		timedOut bool
	)
	kill := func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	started2 := make(chan error, 1)
	waited := make(chan error, 1)
	// Start and Wait run on one locked OS thread: Pdeathsig fires when the
	// thread that started the child exits, and as root without a sandbox
	// the thread carries the securebits that keep capabilities from the
	// child.
	go func() {
		runtime.LockOSThread()
		if os.Geteuid() == 0 && !m.sandboxed() {
			if err := unix.Prctl(unix.PR_SET_SECUREBITS, secbitNoRoot|secbitNoRootLocked, 0, 0, 0); err != nil {
				started2 <- err
				return // the locked thread exits with this goroutine
			}
		}
		if err := cmd.Start(); err != nil {
			started2 <- err
			return
		}
		started2 <- nil
		waited <- cmd.Wait()
		// Not unlocked: the thread's securebits may differ from the
		// others', so it exits with this goroutine.
	}()
	err = <-started2
	// Once started, the init holds its own copies of its pipe ends.
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	if err != nil {
		return nil, err
	}
	var statusLine chan string
	if status != nil {
		statusLine = make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(status)
			statusLine <- strings.TrimSpace(string(b))
		}()
	}
	// The interpreter: the process itself, or the init's child.
	interp := func() int { return cmd.Process.Pid }
	if m.sandboxed() {
		var child int
		interp = func() int {
			if child == 0 {
				child = firstChild(cmd.Process.Pid)
			}
			return child
		}
	}

	done := make(chan struct{})
	var timeout <-chan time.Time
	if inv.Timeout > 0 {
		t := time.NewTimer(inv.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	go func() {
		var tick <-chan time.Time
		if inv.Memory > 0 {
			tk := time.NewTicker(l.cfg.PollInterval)
			defer tk.Stop()
			tick = tk.C
		}
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				kill()
				return
			case <-timeout:
				mu.Lock()
				timedOut = true
				mu.Unlock()
				kill()
				return
			case <-tick:
				if pid := interp(); pid > 0 && rss(pid) > inv.Memory {
					mu.Lock()
					oom = true
					mu.Unlock()
					kill()
					return
				}
			}
		}
	}()
	werr := <-waited
	close(done)
	kill() // anything the function left behind in its group
	stdout.Flush()
	stderr.Flush()
	mu.Lock()
	exit := function.Exit{OOM: oom, TimedOut: timedOut}
	mu.Unlock()
	if err := ctx.Err(); err != nil && !exit.TimedOut && !exit.OOM {
		return nil, err
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) && !errors.Is(werr, exec.ErrWaitDelay) {
		return nil, werr
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if statusLine != nil {
		life.Close()
		line, _, _ := strings.Cut(<-statusLine, "\n")
		switch verb, rest, _ := strings.Cut(line, " "); verb {
		case "exit":
			v, _ := strconv.ParseUint(rest, 10, 32)
			ws = syscall.WaitStatus(v)
		case "error":
			return nil, errdefs.New(errdefs.ErrFailedPrecondition, "model %s: the function's sandbox could not be set up: %s", inv.Model, rest)
		}
	}
	exit.Code = ws.ExitStatus()
	if ws.Signaled() {
		exit.Signal = ws.Signal()
	}
	return p.Finish(exit, started)
}

// firstChild is the oldest child of pid (0 if none yet).
func firstChild(pid int) int {
	p := strconv.Itoa(pid)
	b, err := os.ReadFile("/proc/" + p + "/task/" + p + "/children")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// Securebits (linux/securebits.h).
const (
	secbitNoRoot       = 1 << 0
	secbitNoRootLocked = 1 << 1
)

var pageSize = int64(os.Getpagesize())

// rss is the resident set of pid in bytes (0 if unknown).
func rss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * pageSize
}
