// Package launchers picks the function launcher of a worker: containerd
// when its daemon answers (and the worker runs as root), else a plain child
// process. `--launcher` forces one.
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

// Config says which launcher to open.
type Config struct {
	// Kind is Auto (default), Process or Containerd.
	Kind       string
	Containerd containerd.Config
	Process    process.Config
}

// Info describes the choice, for `lakehouse info`.
type Info struct {
	Launcher string `json:"launcher"`
	Socket   string `json:"containerd_socket,omitempty"`
	// Reason says why Auto chose the process launcher.
	Reason string `json:"reason,omitempty"`
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
		return process.New(cfg.Process), info, nil
	case Process:
		return process.New(cfg.Process), Info{Launcher: Process, Reason: "forced with --launcher=process"}, nil
	case Containerd:
		l, err := containerd.New(ctx, cfg.Containerd)
		if err != nil {
			return nil, Info{}, err
		}
		return l, Info{Launcher: Containerd, Socket: cfg.Containerd.Socket}, nil
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
	switch {
	case cfg.Kind == Process:
		return Info{Launcher: Process, Reason: "forced with --launcher=process"}
	case !containerd.Available(ctx, socket):
		return Info{Launcher: Process, Reason: "no containerd answers at " + socket}
	case os.Geteuid() != 0:
		return Info{Launcher: Process, Reason: "containerd needs root"}
	default:
		return Info{Launcher: Containerd, Socket: socket}
	}
}
