package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	"golang.org/x/sys/unix"
)

// The function's init is this program run again: the launcher starts
// /proc/self/exe with argv[0] initArg0 and the sandbox in sandboxEnv. Go
// cannot run code between fork and exec, so the init does what must happen
// in the child (mounts, user, Landlock, seccomp), then starts the
// interpreter and waits for it. Any binary that links this package serves
// it (the lakehouse command, and test binaries), before its main runs.
const (
	initArg0   = "lakehouse-function-init"
	sandboxEnv = "LAKEHOUSE_SANDBOX"
)

// Descriptors the launcher passes the init (ExtraFiles).
const (
	// statusFD: the init writes "exit <wait status>" when the interpreter
	// ended, or "error <message>" when the sandbox could not be set up.
	statusFD = 3
	// lifelineFD is the read end of a pipe the launcher holds open: when
	// it closes (the launcher died), the init exits, and with it every
	// process of the function.
	lifelineFD = 4
)

// initExitSetup is the init's exit status when the sandbox failed.
const initExitSetup = 125

func init() {
	if len(os.Args) > 0 && os.Args[0] == initArg0 && os.Getenv(sandboxEnv) != "" {
		os.Exit(sandboxMain())
	}
}

func sandboxMain() int {
	runtime.LockOSThread()
	syscall.CloseOnExec(statusFD)
	syscall.CloseOnExec(lifelineFD)
	status := os.NewFile(statusFD, "status")
	fail := func(err error) int {
		fmt.Fprintf(status, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return initExitSetup
	}
	var sb sandbox
	if err := json.Unmarshal([]byte(os.Getenv(sandboxEnv)), &sb); err != nil {
		return fail(fmt.Errorf("sandbox: %v", err))
	}
	if err := sb.enter(); err != nil {
		return fail(err)
	}
	lifeline := os.NewFile(lifelineFD, "lifeline")
	go func() {
		var b [1]byte
		lifeline.Read(b[:]) // returns when the launcher's end closes
		os.Exit(1)
	}()
	pid, err := syscall.ForkExec(sb.Args[0], sb.Args, &syscall.ProcAttr{Dir: sb.Dir, Env: sb.Env,
		Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}})
	if err != nil {
		return fail(fmt.Errorf("start %s: %v", sb.Args[0], err))
	}
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("wait: %v", err))
		}
		if wpid == pid {
			// Returning ends the PID namespace: the kernel kills whatever
			// the function left running.
			fmt.Fprintf(status, "exit %d\n", uint32(ws))
			return 0
		}
	}
}

// enter sets up the sandbox around the calling process: mounts (in its
// new mount namespace), user, Landlock, seccomp. Everything the process
// starts afterwards inherits it.
func (sb *sandbox) enter() error {
	if sb.Namespaces {
		if err := sb.mount(); err != nil {
			return err
		}
	}
	switch {
	case sb.UID >= 0:
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %v", err)
		}
		if err := syscall.Setgid(sb.GID); err != nil {
			return fmt.Errorf("setgid %d: %v", sb.GID, err)
		}
		if err := syscall.Setuid(sb.UID); err != nil {
			return fmt.Errorf("setuid %d: %v", sb.UID, err)
		}
	case sb.UserNS:
		// Root of its own user namespace: the interpreter must not get
		// that namespace's capabilities with its exec.
		if err := unix.Prctl(unix.PR_SET_SECUREBITS, secbitNoRoot|secbitNoRootLocked, 0, 0, 0); err != nil {
			return fmt.Errorf("securebits: %v", err)
		}
	}
	// A change of user clears the parent-death signal.
	unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0)
	if sb.Landlock > 0 {
		if err := sb.landlock(); err != nil {
			return err
		}
	}
	return loadSeccomp()
}

// mount makes the mount namespace private, binds the protected folders
// read-only, makes folders the function's user must reach visible to it,
// and mounts a /proc that shows only the function's PID namespace.
func (sb *sandbox) mount() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %v", err)
	}
	if sb.UID >= 0 {
		if err := sb.reveal(); err != nil {
			return err
		}
	}
	for _, d := range sb.Protect {
		if err := bindReadOnly(d); err != nil {
			return err
		}
	}
	// A writable folder inside a protected one (scratch below the code
	// folder) is bound writable again on top.
	for _, w := range sb.WriteDirs {
		for _, d := range sb.Protect {
			if within(w, d) {
				if err := bindWritable(w); err != nil {
					return err
				}
				break
			}
		}
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %v", err)
	}
	return nil
}

// reveal lets the function's user reach every folder it is granted when
// an ancestor is closed to it (e.g. an interpreter under /root, mode
// 0700): a tmpfs (mode 0755) covers that ancestor, and the granted
// folders are bound back at their paths. The rest of the ancestor stays
// hidden.
func (sb *sandbox) reveal() error {
	var all []string
	all = append(all, sb.ReadDirs...)
	all = append(all, sb.WriteDirs...)
	closed := map[string]bool{}
	for _, d := range all {
		if a := closedAncestor(d); a != "" {
			closed[a] = true
		}
	}
	if len(closed) == 0 {
		return nil
	}
	// Open every folder to bind back before the tmpfs hides it.
	type bind struct {
		dir string
		fd  int
	}
	var binds []bind
	for _, d := range all {
		for a := range closed {
			if within(d, a) && d != a {
				fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return fmt.Errorf("open %s: %v", d, err)
				}
				binds = append(binds, bind{d, fd})
				break
			}
		}
	}
	sort.Slice(binds, func(i, j int) bool { return binds[i].dir < binds[j].dir })
	for a := range closed {
		if err := unix.Mount("tmpfs", a, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=64k"); err != nil {
			return fmt.Errorf("cover %s: %v", a, err)
		}
	}
	for _, b := range binds {
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return err
		}
		src := "/proc/self/fd/" + strconv.Itoa(b.fd)
		if err := unix.Mount(src, b.dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %v", b.dir, err)
		}
		unix.Close(b.fd)
	}
	return nil
}

// closedAncestor is the outermost ancestor of dir that others may not
// search (no o+x), "" if none.
func closedAncestor(dir string) string {
	p := "/"
	for _, part := range strings.Split(strings.TrimPrefix(filepath.Dir(dir), "/"), "/") {
		if part == "" {
			continue
		}
		p = filepath.Join(p, part)
		if p == dir {
			break
		}
		st, err := os.Stat(p)
		if err == nil && st.Mode().Perm()&0o001 == 0 {
			return p
		}
	}
	return ""
}

// bindReadOnly binds dir over itself read-only (keeping the flags of the
// mount it is on, as the kernel requires in a user namespace).
func bindReadOnly(dir string) error {
	if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %v", dir, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|keep, ""); err != nil {
		return fmt.Errorf("make %s read-only: %v", dir, err)
	}
	return nil
}

// bindWritable binds dir over itself writable.
func bindWritable(dir string) error {
	if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %v", dir, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|keep, ""); err != nil {
		return fmt.Errorf("make %s writable: %v", dir, err)
	}
	return nil
}

// landlock restricts the file system to the sandbox's folders, TCP to
// nothing unless the function has internet access, and signals and
// abstract sockets to the function's own processes.
func (sb *sandbox) landlock() error {
	cfg, ok := landlockConfigs[sb.Landlock]
	if !ok {
		return fmt.Errorf("landlock ABI %d unknown", sb.Landlock)
	}
	if sb.Network {
		// Keep the file system and the scope; TCP is not handled.
		c, err := landlock.NewConfig(cfg.HandledAccessFS, cfg.Scoped)
		if err != nil {
			return fmt.Errorf("landlock: %v", err)
		}
		cfg = *c
	}
	rules := []landlock.Rule{
		landlock.RODirs(sb.ReadDirs...),
		landlock.ROFiles(sb.ReadFiles...),
		landlock.RWDirs(sb.WriteDirs...),
		// /dev/null and friends are opened for writing too.
		landlock.RWFiles(devWritable(sb.ReadFiles)...),
	}
	if err := cfg.Restrict(rules...); err != nil {
		return fmt.Errorf("landlock: %v", err)
	}
	return nil
}

func devWritable(files []string) []string {
	var out []string
	for _, f := range files {
		if f == "/dev/null" || f == "/dev/zero" {
			out = append(out, f)
		}
	}
	return out
}

var landlockConfigs = map[int]landlock.Config{
	1: landlock.V1, 2: landlock.V2, 3: landlock.V3, 4: landlock.V4,
	5: landlock.V5, 6: landlock.V6, 7: landlock.V7, 8: landlock.V8,
	9: landlock.V9, 10: landlock.V10, 11: landlock.V11,
}
