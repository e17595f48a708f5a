// Package containerd is the launcher that runs each function invocation in
// its own container, created with the containerd Go client against a running
// containerd daemon (runc).
//
// No image, snapshotter or build is involved: the container's root is an
// empty per-invocation folder (read-only) on which host folders are
// bind-mounted read-only at their host paths, so every path the runner sees
// (interpreter, package folders, user code, data folder) is the same as on
// the host:
//
//	/usr /bin /lib /lib64 /sbin   host system (symlinks kept as symlinks)
//	/etc/...                      ld.so.cache, nsswitch.conf, localtime,
//	                              ssl; resolv.conf and hosts with internet
//	/etc/passwd, /etc/group       generated: root and nobody
//	<interpreter prefix>          e.g. /root/.pyenv/versions/3.11.7
//	<package folders>             read-only
//	<folder of the user module>   read-only
//	<data folder>                 read-write (in /dev/shm)
//	/tmp                          tmpfs scratch, HOME and TMPDIR
//
// plus containerd's defaults (/proc, /dev, /sys, /run). The cgroup memory
// limit comes from the invocation; without internet access the container
// gets a network namespace of its own with only a loopback interface.
//
// The function runs as FunctionUID (nobody), which owns only its data
// folder (given to it for the run), with no capabilities, no_new_privs
// and containerd's default seccomp profile.
//
// Every container carries the labels lakehouse.launcher=1 and
// lakehouse.owner=<pid>@<boot id>; New removes those whose owner process is
// gone (a crashed worker), so nothing is left behind.
package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	runcopts "github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	cerrdefs "github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/proc"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
)

// DefaultSocket is the socket of a system containerd.
const DefaultSocket = "/run/containerd/containerd.sock"

// FunctionUID is the user and group functions run as in their container.
const FunctionUID = 65534

// Labels on every container this launcher creates.
const (
	labelLauncher = "lakehouse.launcher"
	labelOwner    = "lakehouse.owner"
)

// Config configures the containerd launcher.
type Config struct {
	// Socket is the daemon's address (default DefaultSocket).
	Socket string
	// Namespace is the containerd namespace (default "lakehouse").
	Namespace string
	// StateDir holds per-invocation root folders and FIFOs; it should be
	// on a tmpfs (default /run/lakehouse-containerd when /run is a tmpfs,
	// else /dev/shm/lakehouse-containerd). Each invocation's folder is
	// removed when it ends.
	StateDir string
	// ScratchSize is the size of the /tmp tmpfs (default 512 MiB; its
	// pages count against the memory limit).
	ScratchSize int64
	// DialTimeout bounds the first contact with the daemon (default 2s).
	DialTimeout time.Duration
}

// Validate fills in defaults.
func (c *Config) Validate() error {
	if c.Socket == "" {
		c.Socket = DefaultSocket
	}
	if c.Namespace == "" {
		c.Namespace = "lakehouse"
	}
	if c.StateDir == "" {
		c.StateDir = "/dev/shm/lakehouse-containerd"
		if isTmpfs("/run") {
			c.StateDir = "/run/lakehouse-containerd"
		}
	}
	if c.ScratchSize <= 0 {
		c.ScratchSize = 512 << 20
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 2 * time.Second
	}
	return nil
}

// Launcher runs functions in containers.
type Launcher struct {
	cfg    Config
	client *containerd.Client
	owner  string

	// The anchor is an idle container that keeps the shared shim process
	// alive between invocations.
	anchorID   string
	anchor     containerd.Container
	anchorTask containerd.Task
	closed     bool
}

var _ function.Launcher = (*Launcher)(nil)

// Available reports whether a containerd daemon answers on socket.
func Available(ctx context.Context, socket string) bool {
	if socket == "" {
		socket = DefaultSocket
	}
	if st, err := os.Stat(socket); err != nil || st.Mode()&os.ModeSocket == 0 {
		return false
	}
	c, err := containerd.New(socket)
	if err != nil {
		return false
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err == nil
}

// New connects to the daemon and removes containers left by launchers
// whose process is gone. It returns ErrUnavailable if the daemon does not
// answer.
func New(ctx context.Context, cfg Config) (*Launcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errdefs.WithHint(errdefs.ErrPermissionDenied, "run the worker as root or use --launcher=process",
			"the containerd launcher needs root (bind mounts of host folders)")
	}
	if st, err := os.Stat(cfg.Socket); err != nil || st.Mode()&os.ModeSocket == 0 {
		return nil, errdefs.WithHint(errdefs.ErrUnavailable, "start containerd or use --launcher=process",
			"no containerd socket at %s", cfg.Socket)
	}
	client, err := containerd.New(cfg.Socket, containerd.WithDefaultNamespace(cfg.Namespace),
		containerd.WithDefaultRuntime("io.containerd.runc.v2"), containerd.WithTimeout(cfg.DialTimeout))
	if err != nil {
		return nil, errdefs.New(errdefs.ErrUnavailable, "containerd at %s: %v", cfg.Socket, err)
	}
	vctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := client.Version(vctx); err != nil {
		client.Close()
		return nil, errdefs.WithHint(errdefs.ErrUnavailable, "start containerd or use --launcher=process",
			"containerd does not answer at %s: %v", cfg.Socket, err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		client.Close()
		return nil, err
	}
	l := &Launcher{cfg: cfg, client: client, owner: fmt.Sprintf("%d@%s", os.Getpid(), proc.BootID())}
	if err := l.removeLeftovers(ctx); err != nil {
		client.Close()
		return nil, err
	}
	if err := l.startAnchor(ctx); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// startAnchor starts the idle container whose shim every invocation
// shares.
func (l *Launcher) startAnchor(ctx context.Context) error {
	l.anchorID = "lh-anchor-" + randomHex(6)
	dir, err := l.stateDir(l.anchorID)
	if err != nil {
		return err
	}
	mounts, err := systemMounts(dir, false)
	if err != nil {
		return err
	}
	ctr, err := l.client.NewContainer(ctx, l.anchorID,
		containerd.WithContainerLabels(map[string]string{labelLauncher: "1", labelOwner: l.owner}),
		l.withRuntime(),
		containerd.WithNewSpec(
			oci.WithRootFSPath(filepath.Join(dir, "rootfs")),
			oci.WithRootFSReadonly(),
			oci.WithMounts(mounts),
			oci.WithProcessArgs("/bin/sleep", "infinity"),
			oci.WithMemoryLimit(16<<20),
			oci.WithAnnotations(map[string]string{shimGroup: l.anchorID}),
		))
	if err != nil {
		return fmt.Errorf("create the anchor container: %w", err)
	}
	l.anchor = ctr
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		return fmt.Errorf("create the anchor task: %w", err)
	}
	l.anchorTask = task
	if err := task.Start(ctx); err != nil {
		return fmt.Errorf("start the anchor task: %w", err)
	}
	return nil
}

// Name is "containerd".
func (l *Launcher) Name() string { return "containerd" }

// Socket is the daemon address in use.
func (l *Launcher) Socket() string { return l.cfg.Socket }

// Close removes the anchor container and closes the connection to the
// daemon.
func (l *Launcher) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if l.anchorTask != nil {
		if _, derr := l.anchorTask.Delete(ctx, containerd.WithProcessKill); derr != nil && !cerrdefs.IsNotFound(derr) {
			err = fmt.Errorf("delete the anchor task: %w", derr)
		}
	}
	if l.anchor != nil {
		if derr := l.anchor.Delete(ctx); derr != nil && !cerrdefs.IsNotFound(derr) && err == nil {
			err = fmt.Errorf("delete the anchor container: %w", derr)
		}
		os.RemoveAll(filepath.Join(l.cfg.StateDir, l.anchorID))
	}
	if cerr := l.client.Close(); err == nil {
		err = cerr
	}
	l.removeEmptyStateDirs()
	return err
}

// removeEmptyStateDirs removes runc's state folders and StateDir itself
// when no launcher uses them any more (os.Remove leaves a folder that is
// not empty), so nothing stays in /dev/shm after the last launcher.
func (l *Launcher) removeEmptyStateDirs() {
	runc := filepath.Join(l.cfg.StateDir, "runc")
	os.Remove(filepath.Join(runc, l.cfg.Namespace))
	os.Remove(runc)
	os.Remove(l.cfg.StateDir)
}

// Launch runs inv in a new container and removes it afterwards.
func (l *Launcher) Launch(ctx context.Context, inv function.Invocation) (_ *function.Result, retErr error) {
	started := time.Now()
	p, err := function.Prepare(inv)
	if err != nil {
		return nil, err
	}
	defer p.Cleanup()
	restore, err := p.Grant(FunctionUID, FunctionUID)
	if err != nil {
		return nil, err
	}
	defer restore()

	id := "lh-" + randomHex(8)
	dir, err := l.stateDir(id)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	opts, err := l.spec(p, dir)
	if err != nil {
		return nil, err
	}
	// Cleanup must happen even when ctx is cancelled.
	cleanupCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	}
	ctr, err := l.client.NewContainer(ctx, id,
		containerd.WithContainerLabels(map[string]string{labelLauncher: "1", labelOwner: l.owner}),
		l.withRuntime(),
		containerd.WithNewSpec(opts...))
	if err != nil {
		if ctx.Err() != nil {
			// Cancelled as containerd created it: it may exist all the same.
			cctx, cancel := cleanupCtx()
			l.client.ContainerService().Delete(cctx, id)
			cancel()
		}
		return nil, fmt.Errorf("model %s: create container: %w", inv.Model, err)
	}
	defer func() {
		cctx, cancel := cleanupCtx()
		defer cancel()
		if err := ctr.Delete(cctx); err != nil && !cerrdefs.IsNotFound(err) && retErr == nil {
			retErr = fmt.Errorf("model %s: delete container %s: %w", inv.Model, id, err)
		}
	}()

	stdout := p.LineWriter("stdout")
	stderr := p.LineWriter("stderr")
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(dir)))
	if err != nil {
		if ctx.Err() != nil {
			// Cancelled as the shim created it: a task left would keep the
			// container from being deleted.
			cctx, cancel := cleanupCtx()
			if t, terr := ctr.Task(cctx, nil); terr == nil {
				killAndDelete(cctx, t)
			}
			cancel()
		}
		return nil, fmt.Errorf("model %s: create task: %w", inv.Model, err)
	}
	deleted := false
	defer func() {
		if deleted {
			return
		}
		// containerd may refuse to delete a task just killed as still
		// running until it has seen the exit (a loaded machine): a single
		// Delete left the task, and with it the container.
		cctx, cancel := cleanupCtx()
		defer cancel()
		killAndDelete(cctx, task)
	}()
	// Wait before Start, so that a fast exit is not missed.
	exitCh, err := task.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("model %s: wait: %w", inv.Model, err)
	}
	if err := task.Start(ctx); err != nil {
		return nil, fmt.Errorf("model %s: start: %w", inv.Model, err)
	}

	var timeout <-chan time.Time
	if inv.Timeout > 0 {
		t := time.NewTimer(inv.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var exit function.Exit
	var killed bool
	var status containerd.ExitStatus
	select {
	case status = <-exitCh:
	case <-timeout:
		exit.TimedOut, killed = true, true
	case <-ctx.Done():
		killed = true
	}
	if killed {
		kctx, cancel := cleanupCtx()
		task.Kill(kctx, syscall.SIGKILL, containerd.WithKillAll)
		cancel()
		status = <-exitCh
	}
	code, _, err := status.Result()
	if err != nil && !killed {
		return nil, fmt.Errorf("model %s: %w", inv.Model, err)
	}
	exit.Code = int(code)
	if code > 128 && code < 128+65 {
		exit.Signal = syscall.Signal(code - 128)
	}
	if inv.Memory > 0 && !killed {
		exit.OOM = l.oomKilled(id, exit.Signal)
	}
	dctx, cancel := cleanupCtx()
	_, derr := task.Delete(dctx)
	cancel()
	deleted = derr == nil
	stdout.Flush()
	stderr.Flush()
	if killed && !exit.TimedOut {
		return nil, ctx.Err()
	}
	return p.Finish(exit, started)
}

// oomKilled reads the container's memory cgroup (still there until the task
// is deleted): the kernel counts OOM kills there. Where the counter cannot
// be read, a SIGKILL the launcher did not send is taken for one.
func (l *Launcher) oomKilled(id string, sig syscall.Signal) bool {
	rel := filepath.Join(l.cfg.Namespace, id)
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", rel, "memory.oom_control"), // v1
		filepath.Join("/sys/fs/cgroup", rel, "memory.events"),             // v2
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok {
				v, _ := strconv.Atoi(strings.TrimSpace(n))
				return v > 0
			}
		}
	}
	return sig == syscall.SIGKILL
}

// spec builds the container's OCI spec options.
func (l *Launcher) spec(p *function.Prepared, dir string) ([]oci.SpecOpts, error) {
	inv := p.Inv
	mounts, err := systemMounts(dir, inv.InternetAccess)
	if err != nil {
		return nil, err
	}
	// The scratch tmpfs comes before the binds: mounts apply in order, and a
	// bind below /tmp (code, packages or data of a data dir under /tmp)
	// must land on top of it, not be hidden by it.
	mounts = append(mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs",
		Options: []string{"nosuid", "nodev", "mode=1777", "size=" + strconv.FormatInt(l.cfg.ScratchSize, 10)}})
	ro := func(path string) { mounts = append(mounts, roBind(path)) }
	if pre := inv.Env.Python.Prefix; !strings.HasPrefix(pre+"/", "/usr/") {
		ro(pre)
	}
	if !strings.HasPrefix(inv.Env.Python.Path, inv.Env.Python.Prefix+"/") && !strings.HasPrefix(inv.Env.Python.Path, "/usr/") {
		ro(filepath.Dir(inv.Env.Python.Path))
	}
	for _, d := range inv.Env.Paths() {
		ro(d)
	}
	ro(p.CodeDir)
	mounts = append(mounts,
		specs.Mount{Destination: inv.DataDir, Type: "bind", Source: inv.DataDir, Options: []string{"rbind", "rw", "nosuid", "nodev"}},
	)
	opts := []oci.SpecOpts{
		oci.WithRootFSPath(filepath.Join(dir, "rootfs")),
		oci.WithRootFSReadonly(),
		oci.WithMounts(mounts),
		// The interpreter must not be the namespace's PID 1, which ignores
		// signals it has no handler for (abort() would end in SIGSEGV); sh
		// waits for it and exits with 128+signal.
		oci.WithProcessArgs(append([]string{"/bin/sh", "-c", `"$@"; exit $?`, "sh"}, p.Args...)...),
		oci.WithEnv(p.Environ("/tmp")),
		oci.WithProcessCwd("/tmp"),
		oci.WithHostname("lakehouse"),
		oci.WithNoNewPrivileges,
		// An unprivileged user without capabilities: it cannot override
		// file modes, change owners or open raw sockets.
		oci.WithUIDGID(FunctionUID, FunctionUID),
		oci.WithCapabilities(nil),
		seccomp.WithDefaultProfile(),
		oci.WithPidsLimit(4096),
		// One shim for all of this launcher's containers (kept alive by
		// the anchor container): no shim process start per invocation.
		oci.WithAnnotations(map[string]string{shimGroup: l.anchorID}),
	}
	if inv.Memory > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(inv.Memory)))
	}
	if inv.InternetAccess {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	}
	// No terminal, no POSIX message queues, no /run: three mounts fewer
	// for runc to make on every start.
	opts = append(opts, oci.WithoutMounts("/dev/pts", "/dev/mqueue", "/run"))
	return opts, nil
}

// withRuntime is runc with its state under StateDir (a tmpfs), not in
// /run/containerd/runc, which is on disk on some machines.
func (l *Launcher) withRuntime() containerd.NewContainerOpts {
	return containerd.WithRuntime("io.containerd.runc.v2", &runcopts.Options{Root: filepath.Join(l.cfg.StateDir, "runc")})
}

// shimGroup is the annotation by which the runc shim serves several
// containers from one process.
const shimGroup = "io.containerd.runc.v2.group"

func roBind(path string) specs.Mount {
	return specs.Mount{Destination: path, Type: "bind", Source: path, Options: []string{"rbind", "ro", "nosuid", "nodev"}}
}

// systemMounts prepares dir/rootfs and returns the read-only host system
// mounts every container gets.
func systemMounts(dir string, internet bool) ([]specs.Mount, error) {
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	var mounts []specs.Mount
	ro := func(path string) { mounts = append(mounts, roBind(path)) }
	// Host system folders; merged-/usr symlinks (/lib -> usr/lib) stay
	// symlinks in the root folder.
	for _, d := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		st, err := os.Lstat(d)
		switch {
		case err != nil:
			continue
		case st.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				return nil, err
			}
			if err := os.Symlink(target, filepath.Join(root, d)); err != nil {
				return nil, err
			}
		case st.IsDir():
			ro(d)
		}
	}
	etc := []string{"/etc/ld.so.cache", "/etc/nsswitch.conf", "/etc/localtime", "/etc/ssl", "/etc/ca-certificates"}
	if internet {
		etc = append(etc, "/etc/resolv.conf", "/etc/hosts")
	}
	for _, f := range etc {
		if _, err := os.Stat(f); err == nil {
			ro(f)
		}
	}
	for name, content := range map[string]string{
		"passwd": "root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"group":  "root:x:0:\nnogroup:x:65534:\n",
	} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			return nil, err
		}
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: f, Options: []string{"bind", "ro"}})
	}
	return mounts, nil
}

// removeLeftovers deletes containers of launchers whose process is gone.
func (l *Launcher) removeLeftovers(ctx context.Context) error {
	ctrs, err := l.client.Containers(ctx, fmt.Sprintf(`labels."%s"==1`, labelLauncher))
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var first error
	// Invocations first, anchors last: an anchor's shim serves the
	// invocations of its launcher.
	sort.SliceStable(ctrs, func(i, j int) bool {
		return !strings.HasPrefix(ctrs[i].ID(), "lh-anchor-") && strings.HasPrefix(ctrs[j].ID(), "lh-anchor-")
	})
	for _, c := range ctrs {
		labels, err := c.Labels(ctx)
		if err != nil {
			continue
		}
		if ownerAlive(labels[labelOwner]) {
			continue
		}
		if t, err := c.Task(ctx, nil); err == nil {
			if err := killAndDelete(ctx, t); err != nil {
				if first == nil {
					first = fmt.Errorf("remove the task of leftover container %s: %w", c.ID(), err)
				}
				continue
			}
		}
		if err := c.Delete(ctx); err != nil && !cerrdefs.IsNotFound(err) {
			// Go on with the others; the first failure is reported.
			if first == nil {
				first = fmt.Errorf("remove leftover container %s: %w", c.ID(), err)
			}
			continue
		}
		os.RemoveAll(filepath.Join(l.cfg.StateDir, c.ID()))
	}
	// A launcher killed between making a container's folder and creating
	// the container leaves a folder no container names.
	known := map[string]bool{}
	for _, c := range ctrs {
		known[c.ID()] = true
	}
	entries, _ := os.ReadDir(l.cfg.StateDir)
	for _, e := range entries {
		dir := filepath.Join(l.cfg.StateDir, e.Name())
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "lh-") || known[e.Name()] || hasMounts(dir) {
			continue
		}
		owner, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err == nil && ownerAlive(string(owner)) {
			continue
		}
		if st, serr := os.Stat(dir); err != nil && (serr != nil || time.Since(st.ModTime()) < time.Minute) {
			continue // no owner yet: maybe a launcher about to write it
		}
		os.RemoveAll(dir)
	}
	if l.anchor == nil {
		l.removeEmptyStateDirs() // RemoveLeftovers: no launcher of ours
	}
	return first
}

// killAndDelete kills every process of task t, waits for it to exit and
// deletes it. A task whose launcher died may still be starting, or its
// exit not yet reported to containerd (which then refuses the delete as
// "running"): it tries again for up to 10 s.
func killAndDelete(ctx context.Context, t containerd.Task) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	exited, err := t.Wait(ctx)
	if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	for {
		if err := t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil &&
			!cerrdefs.IsNotFound(err) && !cerrdefs.IsFailedPrecondition(err) {
			return err
		}
		if exited != nil {
			select {
			case <-exited:
				exited = nil
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		_, err := t.Delete(ctx)
		if err == nil || cerrdefs.IsNotFound(err) {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ownerFile, in a container's state folder, names the launcher process
// that made it (pid@boot id).
const ownerFile = "owner"

// stateDir makes the state folder of container id, owned by this process.
func (l *Launcher) stateDir(id string) (string, error) {
	dir := filepath.Join(l.cfg.StateDir, id)
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(l.owner), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// hasMounts reports whether anything is mounted at or under dir (in this
// mount namespace): such a folder is never removed recursively.
func hasMounts(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			return true
		}
	}
	return false
}

// ownerAlive reports whether the pid@boot owner still runs.
func ownerAlive(owner string) bool {
	pid, boot, ok := strings.Cut(owner, "@")
	if !ok || boot != proc.BootID() {
		return false
	}
	n, err := strconv.Atoi(pid)
	return err == nil && proc.Running(n)
}

// isTmpfs reports whether dir is a tmpfs mount point.
func isTmpfs(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == 0x01021994 // TMPFS_MAGIC
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Count is how many invocation containers of this namespace exist (the
// anchor aside).
func (l *Launcher) Count(ctx context.Context) (int, error) {
	ctrs, err := l.client.Containers(ctx, fmt.Sprintf(`labels."%s"==1`, labelLauncher))
	n := 0
	for _, c := range ctrs {
		if c.ID() != l.anchorID {
			n++
		}
	}
	return n, err
}

// RemoveLeftovers deletes the containers (and their state folders) of
// launchers whose process is gone, without starting a launcher: the reaper
// of a killed `lakehouse run` calls it.
func RemoveLeftovers(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if st, err := os.Stat(cfg.Socket); err != nil || st.Mode()&os.ModeSocket == 0 {
		return nil
	}
	client, err := containerd.New(cfg.Socket, containerd.WithDefaultNamespace(cfg.Namespace),
		containerd.WithDefaultRuntime("io.containerd.runc.v2"), containerd.WithTimeout(cfg.DialTimeout))
	if err != nil {
		return err
	}
	defer client.Close()
	l := &Launcher{cfg: cfg, client: client}
	return l.removeLeftovers(ctx)
}
