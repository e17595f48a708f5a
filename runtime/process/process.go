// Package process is the launcher that runs a function as a plain child
// process: for laptops and machines without containerd.
//
// The child is the real interpreter with the runner, a clean environment
// (PYTHONPATH = the package folders; -s -S keep every site-packages off
// sys.path), its own process group, a scratch HOME/TMPDIR removed afterwards,
// and the same timeout as in a container.
//
// Limits, compared with the containerd launcher:
//   - Network: as root, a function without internet access gets a network
//     namespace of its own (CLONE_NEWNET, no interface up); as any other
//     user the network cannot be isolated and internet_access=False is
//     not enforced.
//   - Memory: a watchdog samples the interpreter's resident set every
//     PollInterval and kills the process group above the limit, so a fast
//     allocator can overshoot by what it allocates in one interval, and
//     memory of the function's own child processes is not counted.
//   - Files: the function runs with the launcher's user. When that is root,
//     the child starts with no capabilities (SECBIT_NOROOT), so the
//     read-only modes of package folders hold; anything else root owns and
//     can write stays writable.
package process

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lakehouse-dev/lakehouse/runtime/function"
)

// Config configures the process launcher.
type Config struct {
	// ScratchDir is where per-invocation scratch folders are made
	// (default os.TempDir()).
	ScratchDir string
	// PollInterval is the memory watchdog's period (default 20ms).
	PollInterval time.Duration
}

// Launcher runs functions as child processes.
type Launcher struct {
	cfg Config
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
	return &Launcher{cfg: cfg}
}

// Name is "process".
func (l *Launcher) Name() string { return "process" }

// Close does nothing.
func (l *Launcher) Close() error { return nil }

// Launch runs inv as a child process.
func (l *Launcher) Launch(ctx context.Context, inv function.Invocation) (*function.Result, error) {
	started := time.Now()
	p, err := function.Prepare(inv)
	if err != nil {
		return nil, err
	}
	defer p.Cleanup()
	scratch, err := os.MkdirTemp(l.cfg.ScratchDir, "lakehouse-fn-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)

	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env = p.Environ(scratch)
	cmd.Dir = scratch
	stdout := p.LineWriter("stdout")
	stderr := p.LineWriter("stderr")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 && !inv.InternetAccess {
		// A network namespace of its own, with only a loopback interface
		// (down): no connection leaves the function.
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
	}
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
	// thread that started the child exits, and as root the thread carries
	// the securebits that keep capabilities from the child.
	go func() {
		runtime.LockOSThread()
		if os.Geteuid() == 0 {
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
		// Not unlocked: the thread's securebits differ from the others', so
		// it exits with this goroutine.
	}()
	if err := <-started2; err != nil {
		return nil, err
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
				if rss(cmd.Process.Pid) > inv.Memory {
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
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		exit.Code = st.ExitStatus()
		if st.Signaled() {
			exit.Signal = st.Signal()
		}
	}
	return p.Finish(exit, started)
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
