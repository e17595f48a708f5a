package containerd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

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
	launchertest.Run(t, l, launchertest.Capabilities{NetworkIsolation: true, Isolation: true})
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

// A container left by a launcher whose process is gone (a crashed worker)
// is removed when the next launcher starts; one of a live launcher is not.
func TestLeftoversRemoved(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), "lakehouse-test")
	client, err := ctrd.New(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	mk := func(id, owner string) {
		_, err := client.NewContainer(ctx, id,
			ctrd.WithContainerLabels(map[string]string{"lakehouse.launcher": "1", "lakehouse.owner": owner}),
			ctrd.WithNewSpec(oci.WithRootFSPath(t.TempDir()), oci.WithProcessArgs("/bin/true")))
		if err != nil {
			t.Fatal(err)
		}
	}
	mk("lh-dead", fmt.Sprintf("%d@%s", 1<<22+12345, strings.TrimSpace(string(boot))))
	mk("lh-live", fmt.Sprintf("%d@%s", os.Getpid(), strings.TrimSpace(string(boot))))
	mk("lh-otherboot", fmt.Sprintf("%d@not-this-boot", os.Getpid()))
	l, _ := newLauncher(t)
	for id, want := range map[string]bool{"lh-dead": false, "lh-live": true, "lh-otherboot": false} {
		_, err := client.LoadContainer(ctx, id)
		if (err == nil) != want {
			t.Errorf("%s exists %v, want %v", id, err == nil, want)
		}
	}
	if c, err := client.LoadContainer(ctx, "lh-live"); err == nil {
		c.Delete(ctx)
	}
	l.Close()

	// Folders of containers never created (the launcher was killed in
	// between): removed once their owner is gone.
	state := t.TempDir()
	self := fmt.Sprintf("%d@%s", os.Getpid(), strings.TrimSpace(string(boot)))
	for name, owner := range map[string]string{"lh-deadowner": "4206942@" + strings.TrimSpace(string(boot)),
		"lh-liveowner": self, "lh-noowner-old": "", "lh-noowner-new": "", "other": ""} {
		dir := filepath.Join(state, name)
		if err := os.MkdirAll(filepath.Join(dir, "rootfs", "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			os.WriteFile(filepath.Join(dir, "owner"), []byte(owner), 0o644)
		}
		if name == "lh-noowner-old" {
			old := time.Now().Add(-2 * time.Minute)
			os.Chtimes(dir, old, old)
		}
	}
	if err := containerd.RemoveLeftovers(context.Background(), containerd.Config{Socket: socket, StateDir: state, Namespace: "lakehouse-test"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"lh-deadowner": false, "lh-liveowner": true, "lh-noowner-old": false, "lh-noowner-new": true, "other": true} {
		if _, err := os.Stat(filepath.Join(state, name)); (err == nil) != want {
			t.Errorf("state folder %s exists %v, want %v", name, err == nil, want)
		}
	}
}
