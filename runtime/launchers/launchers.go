// Package launchers picks the function launcher of a worker: containerd
// when its daemon answers (and the worker runs as root), else a plain child
// process. `--launcher` forces one, and `--isolation none` lets the process
// launcher run functions unisolated where the machine offers no sandbox.
package launchers

import (
	"context"
	"os"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/containerd"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

// Kinds of --launcher.
const (
	Auto       = "auto"
	Process    = "process"
	Containerd = "containerd"
)

// SocketEnv overrides the containerd socket (default
// /run/containerd/containerd.sock).
const SocketEnv = "LAKEHOUSE_CONTAINERD_SOCKET"

// StateDirEnv overrides the containerd launcher's state folder (default
// /run/lakehouse-containerd or /dev/shm/lakehouse-containerd, see
// containerd.Config.StateDir): tests give each daemon a folder of its own.
const StateDirEnv = "LAKEHOUSE_CONTAINERD_STATE_DIR"

// Isolation modes (--isolation).
const (
	// IsolationAuto isolates functions on every launcher and refuses to
	// run them where the machine cannot.
	IsolationAuto = process.IsolationAuto
	// IsolationNone lets the process launcher run functions with the
	// worker's own user and access.
	IsolationNone = process.IsolationNone
)

// Config says which launcher to open.
type Config struct {
	// Kind is Auto (default), Process or Containerd.
	Kind string
	// Isolation is IsolationAuto (default) or IsolationNone; it sets
	// Process.Isolation. Containers are always isolated.
	Isolation  string
	Containerd containerd.Config
	Process    process.Config
}

// Info describes the choice, for `lakehouse info`.
type Info struct {
	Launcher string `json:"launcher"`
	Socket   string `json:"containerd_socket,omitempty"`
	// Reason says why Auto chose the process launcher.
	Reason string `json:"reason,omitempty"`
	// Isolation says how functions are isolated, or plainly that they are
	// not ("functions are NOT isolated ...").
	Isolation string `json:"isolation"`
	// Isolated is false when functions run without a sandbox.
	Isolated bool `json:"isolated"`
}

// containerIsolation describes the containerd launcher's sandbox.
const containerIsolation = "isolated: container (namespaces, uid 65534, no capabilities, seccomp)"

// withIsolation completes info for cfg.
func withIsolation(info Info, cfg Config) Info {
	if info.Launcher == Containerd {
		info.Isolation, info.Isolated = containerIsolation, true
		return info
	}
	info.Isolation = process.Describe(cfg.Process.Isolation)
	info.Isolated = process.Check(cfg.Process.Isolation) == nil && cfg.Process.Isolation != IsolationNone
	return info
}

// openProcess is the process launcher, or ErrFailedPrecondition when it
// cannot isolate functions and isolation was not turned off.
func openProcess(cfg Config, info Info) (function.Launcher, Info, error) {
	if err := process.Check(cfg.Process.Isolation); err != nil {
		return nil, Info{}, err
	}
	process.RemoveLeftovers(cfg.Process.ScratchDir)
	return process.New(cfg.Process), withIsolation(info, cfg), nil
}

// Open returns the launcher cfg asks for. With Containerd it returns
// ErrUnavailable when the daemon does not answer; Auto never fails for
// that reason.
func Open(ctx context.Context, cfg Config) (function.Launcher, Info, error) {
	if cfg.Containerd.Socket == "" {
		cfg.Containerd.Socket = os.Getenv(SocketEnv)
	}
	if cfg.Containerd.Socket == "" {
		cfg.Containerd.Socket = containerd.DefaultSocket
	}
	if cfg.Containerd.StateDir == "" {
		cfg.Containerd.StateDir = os.Getenv(StateDirEnv)
	}
	if err := cfg.validateIsolation(); err != nil {
		return nil, Info{}, err
	}
	switch cfg.Kind {
	case "", Auto:
		info := Describe(ctx, cfg)
		if info.Launcher == Containerd {
			l, err := containerd.New(ctx, cfg.Containerd)
			if err == nil {
				return l, info, nil
			}
			info = Info{Launcher: Process, Reason: err.Error()}
		}
		return openProcess(cfg, info)
	case Process:
		return openProcess(cfg, Info{Launcher: Process, Reason: "forced with --launcher=process"})
	case Containerd:
		l, err := containerd.New(ctx, cfg.Containerd)
		if err != nil {
			return nil, Info{}, err
		}
		return l, withIsolation(Info{Launcher: Containerd, Socket: cfg.Containerd.Socket}, cfg), nil
	default:
		return nil, Info{}, errdefs.New(errdefs.ErrInvalidArgument, "unknown launcher %q: use auto, process or containerd", cfg.Kind)
	}
}

// Describe says which launcher Auto would pick, without opening it.
func Describe(ctx context.Context, cfg Config) Info {
	socket := cfg.Containerd.Socket
	if socket == "" {
		socket = os.Getenv(SocketEnv)
	}
	if socket == "" {
		socket = containerd.DefaultSocket
	}
	if cfg.Process.Isolation == "" {
		cfg.Process.Isolation = cfg.Isolation
	}
	var info Info
	switch {
	case cfg.Kind == Process:
		info = Info{Launcher: Process, Reason: "forced with --launcher=process"}
	case !containerd.Available(ctx, socket):
		info = Info{Launcher: Process, Reason: "no containerd answers at " + socket}
	case os.Geteuid() != 0:
		info = Info{Launcher: Process, Reason: "containerd needs root"}
	default:
		info = Info{Launcher: Containerd, Socket: socket}
	}
	return withIsolation(info, cfg)
}

// validateIsolation checks Isolation and copies it to Process.
func (cfg *Config) validateIsolation() error {
	switch cfg.Isolation {
	case "", IsolationAuto, IsolationNone:
	default:
		return errdefs.New(errdefs.ErrInvalidArgument, "unknown isolation %q: use auto or none", cfg.Isolation)
	}
	if cfg.Process.Isolation == "" {
		cfg.Process.Isolation = cfg.Isolation
	}
	return nil
}
