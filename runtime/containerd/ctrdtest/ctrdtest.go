// Package ctrdtest gives tests a containerd daemon: the one at
// $LAKEHOUSE_CONTAINERD_SOCKET when set (the test command started it with
// scripts/containerd-test.sh), else a private one this package starts with
// that script and stops by its PID.
package ctrdtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/lakehouse-dev/lakehouse/internal/repodir"
)

// SocketEnv names a running daemon's socket.
const SocketEnv = "LAKEHOUSE_CONTAINERD_SOCKET"

// Install is what to install when the daemon's binaries are missing.
const Install = "apt-get install -y containerd runc"

func script() string {
	return repodir.Path("scripts/containerd-test.sh")
}

// Start returns the socket of a daemon and a function that stops it (a
// no-op for a daemon given by SocketEnv). It fails, saying what to
// install, when containerd or runc is missing.
func Start() (socket string, stop func(), err error) {
	if s := os.Getenv(SocketEnv); s != "" {
		return s, func() {}, nil
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			return "", nil, fmt.Errorf("%s is not installed: the containerd launcher tests need a real daemon; run `%s` (or set %s)", b, Install, SocketEnv)
		}
	}
	if os.Geteuid() != 0 {
		return "", nil, fmt.Errorf("the containerd launcher tests must run as root (containerd needs mounts and cgroups)")
	}
	dir, err := os.MkdirTemp("", "lakehouse-ctrd-")
	if err != nil {
		return "", nil, err
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(script(), "start", dir)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		exec.Command(script(), "stop", dir).Run()
		return "", nil, fmt.Errorf("start containerd: %v: %s", err, errb.String())
	}
	// A reaper stops the daemon should this process die without calling
	// stop (a test timeout, a signal).
	reaper := exec.Command("/bin/sh", "-c", `while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3"`,
		"reaper", strconv.Itoa(os.Getpid()), script(), dir)
	reaper.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := reaper.Start(); err != nil {
		exec.Command(script(), "stop", dir).Run()
		return "", nil, err
	}
	go reaper.Wait()
	return strings.TrimSpace(out.String()), func() {
		exec.Command(script(), "stop", dir).Run()
		reaper.Process.Kill()
	}, nil
}
