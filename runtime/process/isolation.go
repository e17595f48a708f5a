package process

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Isolation modes of Config.Isolation.
const (
	// IsolationAuto isolates functions as far as this machine allows and
	// refuses to run them where it allows nothing.
	IsolationAuto = "auto"
	// IsolationNone runs functions with the launcher's own user and
	// access: only where the operator asks for it.
	IsolationNone = "none"
)

// mode is how one invocation is sandboxed.
type mode struct {
	// landlock is the Landlock ABI enforced (0: none).
	landlock int
	// namespaces: new mount, PID, IPC (and network) namespaces, the
	// function's init as their PID 1.
	namespaces bool
	// dropUser: the function runs as Config.UID/GID (the launcher is
	// root).
	dropUser bool
	// userns: the namespaces belong to a new unprivileged user namespace.
	userns bool
}

func (m mode) sandboxed() bool { return m.landlock > 0 || m.namespaces }

// Support is what this machine offers to isolate functions.
type Support struct {
	Root bool `json:"root"`
	// Landlock is the kernel's Landlock ABI version (0: none).
	Landlock int `json:"landlock"`
	// UserNamespaces: unprivileged user namespaces can be created.
	UserNamespaces bool `json:"user_namespaces"`
}

var probe = sync.OnceValue(func() Support {
	if !haveInit {
		return Support{}
	}
	s := Support{Root: os.Geteuid() == 0}
	if v, err := ll.LandlockGetABIVersion(); err == nil && v > 0 {
		s.Landlock = v
	}
	s.UserNamespaces = userNamespaces()
	return s
})

// Probe reports what this machine offers to isolate functions (cached).
func Probe() Support { return probe() }

// userNamespaces reports whether an unprivileged user may create a user
// namespace here (the sysctls of mainline, Debian and Ubuntu kernels).
func userNamespaces() bool {
	n := func(path string) (int, bool) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, false
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		return v, err == nil
	}
	if v, ok := n("/proc/sys/user/max_user_namespaces"); !ok || v == 0 {
		return false
	}
	if v, ok := n("/proc/sys/kernel/unprivileged_userns_clone"); ok && v == 0 {
		return false
	}
	if v, ok := n("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); ok && v != 0 {
		return false
	}
	return true
}

// modeFor picks the sandbox for isolation on a machine offering s. It
// returns ErrFailedPrecondition when isolation is auto and s offers
// nothing.
func modeFor(isolation string, s Support) (mode, error) {
	switch isolation {
	case IsolationNone:
		return mode{}, nil
	case "", IsolationAuto:
	default:
		return mode{}, errdefs.New(errdefs.ErrInvalidArgument, "unknown isolation %q: use auto or none", isolation)
	}
	m := mode{landlock: min(s.Landlock, 11)}
	switch {
	case s.Root:
		m.namespaces, m.dropUser = true, true
	case s.UserNamespaces:
		m.namespaces, m.userns = true, true
	}
	if !m.sandboxed() {
		return m, errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"run as root, enable unprivileged user namespaces or Landlock, or accept the risk with --launcher process --isolation none",
			"functions cannot be isolated on this machine (no Landlock, no user namespaces, not root)")
	}
	return m, nil
}

// Check returns ErrFailedPrecondition when isolation is auto and this
// machine cannot isolate functions at all, ErrInvalidArgument for an
// unknown isolation.
func Check(isolation string) error {
	_, err := modeFor(isolation, Probe())
	return err
}

// Describe says in a few words how functions would be isolated with
// isolation on this machine, for `lakehouse info` and run logs.
func Describe(isolation string) string { return describe(isolation, Probe()) }

// describe is Describe on a machine offering s.
func describe(isolation string, s Support) string {
	m, err := modeFor(isolation, s)
	if err != nil {
		return "functions are NOT isolated: " + err.Error()
	}
	if !m.sandboxed() {
		return "functions are NOT isolated (--isolation none): they run with this process's user and access"
	}
	var parts []string
	switch {
	case m.dropUser:
		parts = append(parts, "namespaces (mount, pid, ipc, net)", "uid "+strconv.Itoa(DefaultUID))
	case m.userns:
		parts = append(parts, "user namespace (mount, pid, ipc, net)")
	default:
		parts = append(parts, "no namespaces: processes may outlive a run")
	}
	if m.landlock > 0 {
		parts = append(parts, fmt.Sprintf("landlock ABI %d", m.landlock))
	} else {
		parts = append(parts, "no landlock: file access not restricted beyond the user")
	}
	parts = append(parts, "seccomp")
	return "isolated: " + strings.Join(parts, ", ")
}
