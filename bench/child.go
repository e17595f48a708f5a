package bench

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// childScript is the Python side, run with `python -c`.
//
//go:embed child.py
var childScript string

// PythonEnv names the interpreter to use instead of searching PATH.
const PythonEnv = "LAKEHOUSE_BENCH_PYTHON"

// probe imports what the children import and prints the real interpreter
// binary, so a pyenv shim (~150 ms a start) is resolved once.
const probe = "import sys, pyarrow, pyarrow.compute, pyarrow.parquet; print(sys.executable)"

var findPython = sync.OnceValues(func() (string, error) {
	if p := os.Getenv(PythonEnv); p != "" {
		exe, err := probePython(p)
		if err != nil {
			return "", fmt.Errorf("%s=%s cannot import pyarrow (%v); install it with `%s -m pip install pyarrow`", PythonEnv, p, err, p)
		}
		return exe, nil
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, "python3")
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			continue
		}
		if exe, err := probePython(p); err == nil {
			return exe, nil
		}
	}
	return "", fmt.Errorf("no python3 on PATH imports pyarrow; install it with `python3 -m pip install pyarrow`, or set %s to an interpreter that has it", PythonEnv)
})

// FindPython returns the interpreter binary the children run:
// $LAKEHOUSE_BENCH_PYTHON if set, else the first python3 on PATH that imports
// pyarrow. Its error says what to install.
func FindPython() (string, error) { return findPython() }

func probePython(p string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, p, "-c", probe)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, lastLine(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Load is what one child reported about its table.
type Load struct {
	PID  int
	Mode string // "idle", "ipc" or "parquet"

	ReadSeconds float64       // inside the child: the read alone
	SumSeconds  float64       // inside the child: sum of every column after it
	StartToLoad time.Duration // outside: from starting the process to its "loaded" line
	Rows        int64
	Sums        map[string]json.Number
	Allocated   int64 // pa.total_allocated_bytes() once ready
}

type report struct {
	Event     string                 `json:"event"`
	ReadS     float64                `json:"read_s"`
	SumS      float64                `json:"sum_s"`
	Rows      int64                  `json:"rows"`
	Sums      map[string]json.Number `json:"sums"`
	Allocated int64                  `json:"allocated"`
}

// child is one Python process. It holds its table until release, which
// closes its stdin; kill ends it by PID. Either waits for it.
type child struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string
	stderr  bytes.Buffer // written by exec's copier; read only after wait
	started time.Time
	load    Load

	waitOnce sync.Once
	waitErr  error
}

// startChild runs the child script in mode ("idle", "ipc", "parquet").
func startChild(python, mode, path string) (*child, error) {
	args := []string{"-c", childScript, mode}
	if path != "" {
		args = append(args, path)
	}
	c := &child{cmd: exec.Command(python, args...), lines: make(chan string, 4)}
	// If this process dies without killing it, the kernel does.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.started = time.Now()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", python, err)
	}
	c.load = Load{PID: c.cmd.Process.Pid, Mode: mode}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c, nil
}

// awaitReady reads the child's reports until "ready" and returns its Load.
func (c *child) awaitReady(ctx context.Context) (Load, error) {
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-c.lines:
		case <-ctx.Done():
			return c.load, fmt.Errorf("child %d (%s): %w", c.load.PID, c.load.Mode, ctx.Err())
		}
		if !ok {
			err := c.wait()
			return c.load, fmt.Errorf("child %d (%s) ended before it was ready (%v): %s", c.load.PID, c.load.Mode, err, lastLine(c.stderr.String()))
		}
		var r report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return c.load, fmt.Errorf("child %d (%s) printed %q: %w", c.load.PID, c.load.Mode, line, err)
		}
		switch r.Event {
		case "loaded":
			c.load.StartToLoad = time.Since(c.started)
			c.load.ReadSeconds, c.load.Rows = r.ReadS, r.Rows
		case "ready":
			c.load.SumSeconds, c.load.Sums, c.load.Allocated = r.SumS, r.Sums, r.Allocated
			return c.load, nil
		}
	}
}

// release closes the child's stdin so it exits, and waits for it.
func (c *child) release() error {
	c.stdin.Close()
	if err := c.wait(); err != nil {
		return fmt.Errorf("child %d (%s): %w: %s", c.load.PID, c.load.Mode, err, lastLine(c.stderr.String()))
	}
	return nil
}

// kill ends the child by its PID and waits for it; harmless once it has exited.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.wait()
}

// wait drains stdout (as exec requires before Wait) and reaps the process.
func (c *child) wait() error {
	c.waitOnce.Do(func() {
		for range c.lines {
		}
		c.waitErr = c.cmd.Wait()
	})
	return c.waitErr
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	if s == "" {
		return "(no stderr)"
	}
	return s
}
