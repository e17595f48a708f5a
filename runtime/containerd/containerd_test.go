package containerd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/runtime/containerd"
	"github.com/lakehouse-dev/lakehouse/runtime/containerd/ctrdtest"
	"github.com/lakehouse-dev/lakehouse/runtime/launchertest"
)

var socket string

func TestMain(m *testing.M) {
	s, stop, err := ctrdtest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	socket = s
	code := m.Run()
	stop()
	os.Exit(code)
}

func newLauncher(t testing.TB) (*containerd.Launcher, string) {
	t.Helper()
	state, err := os.MkdirTemp("/dev/shm", "lakehouse-ctrd-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	l, err := containerd.New(context.Background(), containerd.Config{Socket: socket, StateDir: state, Namespace: "lakehouse-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, state
}

func TestLauncher(t *testing.T) {
	l, state := newLauncher(t)
	launchertest.Run(t, l, launchertest.Capabilities{NetworkIsolation: true})
	assertNoContainers(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(state, "*"))
	for _, f := range left {
		if filepath.Base(f) != "runc" {
			t.Errorf("state left behind: %s", f)
		}
	}
	runc, _ := filepath.Glob(filepath.Join(state, "runc", "*", "*"))
	if len(runc) != 0 {
		t.Errorf("runc state left behind: %v", runc)
	}
}

func assertNoContainers(t *testing.T, l *containerd.Launcher) {
	t.Helper()
	n, err := l.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d containers left", n)
	}
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "lakehouse-containerd") || strings.Contains(line, "/lh-") {
			t.Errorf("mount left: %s", line)
		}
	}
}

func TestAvailable(t *testing.T) {
	if !containerd.Available(context.Background(), socket) {
		t.Fatal("daemon not available")
	}
	if containerd.Available(context.Background(), filepath.Join(t.TempDir(), "nothing.sock")) {
		t.Fatal("a missing socket is available")
	}
}
