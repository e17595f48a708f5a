package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveProc is `lakehouse serve` run as a process of its own (the test
// binary acting as the CLI, see TestMain) over a data dir, listening on
// 127.0.0.1 only. Tests stop it by its pid; a cleanup kills it if a test
// failed before.
type serveProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	dataDir string
	// Addr is the Flight address (grpc://127.0.0.1:PORT), HTTPAddr the
	// HTTP one (127.0.0.1:PORT).
	Addr, HTTPAddr string
	out            *syncBuffer
	done           chan struct{} // closed when the process has exited
	err            error         // of Wait, once done is closed
}

// serveEnv is the environment of the test's lakehouse processes over
// dataDir: no server address inherited from the caller, and no /dev/shm
// folder (nothing the server does here needs one).
func serveEnv(dataDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == envAddr || k == envAPIKey || k == envDataDir {
			continue
		}
		env = append(env, kv)
	}
	return append(env, envTestAsCLI+"=1", envDataDir+"="+dataDir, envUser+"=tester", "HOME="+dataDir,
		envShmDir+"="+filepath.Join(dataDir, "shm"))
}

// startServe starts a server over dataDir with the Flight listener on
// flightAddr ("127.0.0.1:0" for any free port) and waits for the line that
// names its addresses. extra are more flags of serve.
func startServe(t testing.TB, dataDir, flightAddr string, extra ...string) *serveProc {
	t.Helper()
	args := append([]string{"serve", "--flight-addr", flightAddr, "--http-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(cliBinary(), args...)
	cmd.Env = serveEnv(dataDir)
	p := &serveProc{t: t, cmd: cmd, dataDir: dataDir, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// A process group of its own: a Ctrl-C of the test does not reach it
	// twice, and the check for leftovers can look at the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
		// Wait only after stdout is read to its end (os/exec's rule).
		p.err = cmd.Wait()
		close(p.done)
	}()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				<-p.done
				t.Fatalf("lakehouse serve ended before it listened: %v\n%s", p.err, p.out)
			}
			const prefix = "lakehouse serve: flight on grpc://"
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				f := strings.Fields(rest)
				p.Addr = "grpc://" + strings.TrimSuffix(f[0], ",")
				for i, w := range f {
					if w == "http" && i+2 < len(f) {
						p.HTTPAddr = strings.TrimSuffix(strings.TrimPrefix(f[i+2], "http://"), ",")
					}
				}
				return p
			}
		case <-deadline:
			t.Fatalf("lakehouse serve did not listen within 60 s:\n%s", p.out)
		}
	}
}

// Pid is the server's process id.
func (p *serveProc) Pid() int { return p.cmd.Process.Pid }

// hostPort is Addr without its scheme.
func (p *serveProc) hostPort() string { return strings.TrimPrefix(p.Addr, "grpc://") }

// kill sends SIGKILL to the server (by pid) and waits for it to exit.
func (p *serveProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to timeout for the server to exit; it
// returns how long that took and the process's exit error (nil for exit 0).
// If the server is still running after timeout it is killed and stop fails
// the test.
func (p *serveProc) stop(timeout time.Duration) (time.Duration, error) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("SIGTERM to the server: %v", err)
	}
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(timeout):
		p.kill()
		p.t.Fatalf("the server did not stop within %s of SIGTERM:\n%s", timeout, p.out)
		return 0, nil
	}
}

// vmStatus reads a field of /proc/PID/status in KiB (VmRSS, VmHWM); 0
// if the process is gone.
func vmStatus(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is the CPU time process pid has used (user and system), from
// /proc/PID/stat; 0 if the process is gone.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which ends with the last ')':
	// utime and stime are the 12th and 13th, in clock ticks of 1/100 s.
	_, rest, ok := strings.Cut(string(b[bytes.LastIndexByte(b, ')')+1:]), " ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// groupAlive reports whether any process of process group pgid is left.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}

// runCLI runs the test binary as `lakehouse args...` over dataDir and
// returns its output and exit code.
func runCLI(t testing.TB, dataDir string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cliBinary(), args...)
	// An embedded command gives up on a held catalog after a second.
	cmd.Env = append(serveEnv(dataDir), envLockTimeout+"=1s")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	default:
		t.Fatalf("lakehouse %s: %v", strings.Join(args, " "), err)
		return "", -1
	}
}

// setupServeData makes the data dir the load and fault tests serve: the
// sample table sales.transactions and an empty namespace load on main,
// made with the embedded CLI before any server runs.
func setupServeData(t testing.TB) string {
	t.Helper()
	dataDir := t.TempDir()
	testdata, err := filepath.Abs(filepath.Join("..", "testdata", "sample", "transactions"))
	if err != nil {
		t.Fatal(err)
	}
	getenv := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	for _, args := range [][]string{
		{"checkout", "-b", "tester.setup"},
		{"namespace", "create", "sales"},
		{"namespace", "create", "load"},
		{"table", "import", "sales.transactions", "--from", testdata},
		{"merge", "tester.setup", "--into", "main"},
	} {
		var o, e bytes.Buffer
		env := &Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Getenv: func(k string) string { return getenv[k] }}
		if code := run(context.Background(), append([]string{"lakehouse"}, args...), env); code != 0 {
			t.Fatalf("lakehouse %s: exit %d\n%s%s", strings.Join(args, " "), code, &o, &e)
		}
	}
	return dataDir
}
