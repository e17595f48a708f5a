package process

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lakehouse-dev/lakehouse/runtime/function"
)

// sandbox is what the function's init (init_linux.c) is told to set up
// before it starts the interpreter.
type sandbox struct {
	// Init is the program that executes the sandbox (default this one).
	Init string
	// Args, Env and Dir start the interpreter.
	Args []string
	Env  []string
	Dir  string
	// UID and GID are the user the function runs as (-1: the launcher's).
	UID, GID int
	// UserNS: the init is root of an unprivileged user namespace and
	// drops its capabilities instead of changing user.
	UserNS bool
	// Namespaces: the init is PID 1 of new mount, PID, IPC (and, without
	// Network, network) namespaces; it mounts a /proc of its own and the
	// read-only binds below.
	Namespaces bool
	// ReadDirs and ReadFiles may be read (and executed); WriteDirs also
	// written. Every path is absolute, without symbolic links.
	ReadDirs  []string
	ReadFiles []string
	WriteDirs []string
	// Protect are folders bind-mounted read-only over themselves (the
	// package folders, the interpreter, the code): not even their owner
	// can change them.
	Protect []string
	// Network: the function may open TCP connections.
	Network bool
	// Landlock is the Landlock ABI version to enforce (0: none).
	Landlock int
}

// Paths every interpreter needs: shared libraries, the dynamic linker's
// cache, time zones, devices.
var (
	systemDirs  = []string{"/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"}
	systemFiles = []string{"/etc/ld.so.cache", "/etc/localtime", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"}
	// internetFiles are read only by a function with internet access
	// (name resolution, certificates).
	internetFiles = []string{"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/host.conf", "/etc/services", "/etc/protocols"}
	internetDirs  = []string{"/etc/ssl", "/etc/ca-certificates", "/etc/pki"}
	// procDirs are read when the function has a /proc of its own (its
	// PID namespace: it shows only the function's processes).
	procDirs = []string{"/proc", "/sys/devices/system/cpu", "/sys/fs/cgroup"}
)

// sandboxFor describes the sandbox of invocation p with scratch folder
// scratch.
func (l *Launcher) sandboxFor(p *function.Prepared, scratch string, mode mode) (*sandbox, error) {
	inv := p.Inv
	sb := &sandbox{Init: l.cfg.Init, Args: p.Args, Env: p.Environ(scratch), Dir: scratch, UID: -1, GID: -1,
		Network: inv.InternetAccess, Landlock: mode.landlock, Namespaces: mode.namespaces, UserNS: mode.userns}
	if mode.dropUser {
		sb.UID, sb.GID = l.cfg.UID, l.cfg.GID
	}
	var read []string
	python := inv.Env.Python
	read = append(read, python.Prefix, filepath.Dir(python.Path))
	if real, err := filepath.EvalSymlinks(python.Path); err == nil {
		read = append(read, filepath.Dir(real))
	}
	read = append(read, inv.Env.Paths()...)
	read = append(read, p.CodeDir)
	protect := read
	read = append(read, systemDirs...)
	files := systemFiles
	if inv.InternetAccess {
		read = append(read, internetDirs...)
		files = append(files, internetFiles...)
	}
	if mode.namespaces {
		read = append(read, procDirs...)
	}
	var err error
	if sb.ReadDirs, err = existing(read, true); err != nil {
		return nil, err
	}
	if sb.ReadFiles, err = existing(files, false); err != nil {
		return nil, err
	}
	if sb.WriteDirs, err = existing([]string{scratch, inv.DataDir}, true); err != nil {
		return nil, err
	}
	if len(sb.WriteDirs) != 2 {
		return nil, fmt.Errorf("model %s: scratch or data folder missing", inv.Model)
	}
	if sb.Protect, err = existing(protect, true); err != nil {
		return nil, err
	}
	// System folders are not protected by binds: the function's user
	// does not own them. Sibling package folders are bound as their
	// store, and nothing below a folder already bound.
	sb.Protect = collapse(sb.Protect, func(parent string) bool {
		for _, w := range sb.WriteDirs {
			if within(w, parent) {
				return false
			}
		}
		return true
	})
	return sb, nil
}

// existing resolves the symbolic links of paths and keeps those that
// exist as folders (dirs) or as anything else, without duplicates.
func existing(paths []string, dirs bool) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		st, err := os.Stat(real)
		if err != nil || st.IsDir() != dirs || seen[real] {
			continue
		}
		seen[real] = true
		out = append(out, real)
	}
	sort.Strings(out)
	return out, nil
}

// outermost drops the folders inside another folder of dirs (sorted).
func outermost(dirs []string) []string {
	var out []string
next:
	for _, d := range dirs {
		for _, o := range out {
			if within(d, o) {
				continue next
			}
		}
		out = append(out, d)
	}
	return out
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}
