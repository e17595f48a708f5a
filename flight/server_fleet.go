package flight

import (
	"context"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
)

// Fleet is the control plane's registry of workers: *fleet.Registry.
type Fleet interface {
	// Register admits a worker; see fleet.Registry.Register for its
	// errors.
	Register(ctx context.Context, r fleet.Registration) (fleet.Lease, error)
	// Heartbeat records a worker alive; a dead lease is
	// errdefs.ErrFailedPrecondition, an unknown one errdefs.ErrNotFound.
	Heartbeat(ctx context.Context, hb fleet.Heartbeat) error
	// Workers lists the workers by name.
	Workers(ctx context.Context) []fleet.WorkerInfo
	// TicketKey signs the tickets of the intermediates the control plane
	// holds (and of placed queries).
	TicketKey() []byte
}

var _ Fleet = (*fleet.Registry)(nil)

// registerFleet adds the fleet actions.
func (s *Server) registerFleet() {
	unary(s, ActionRegisterWorker, "join a worker to the fleet (worker keys)", PermWorker,
		func(ctx context.Context, r fleet.Registration) (any, error) {
			f, err := s.fleet()
			if err != nil {
				return nil, err
			}
			l, err := f.Register(ctx, r)
			if err != nil {
				return nil, err
			}
			s.opts.Log.Info("worker joined", "worker", r.Name, "addr", r.Addr, "epoch", l.Epoch, "key", PrincipalFrom(ctx).KeyID)
			return l, nil
		})
	unary(s, ActionWorkerHeartbeat, "report a worker alive (worker keys)", PermWorker,
		func(ctx context.Context, hb fleet.Heartbeat) (any, error) {
			f, err := s.fleet()
			if err != nil {
				return nil, err
			}
			return nil, f.Heartbeat(ctx, hb)
		})
	unary(s, ActionListWorkers, "list the workers of the fleet", PermRead, func(ctx context.Context, _ struct{}) (any, error) {
		f, err := s.fleet()
		if err != nil {
			return nil, err
		}
		return f.Workers(ctx), nil
	})
}

// fleet is the server's registry, or an error saying the server is not
// a control plane.
func (s *Server) fleet() (Fleet, error) {
	if s.opts.Fleet == nil {
		return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"workers join a server started with `lakehouse serve --role control`",
			"this server runs --role %s: it is not a control plane and has no workers", s.opts.Role)
	}
	return s.opts.Fleet, nil
}

// workerGate keeps a worker key to the fleet's actions: method is the
// gRPC method called, action the type of a DoAction ("" for others).
func workerGate(ctx context.Context, method, action string) error {
	p := PrincipalFrom(ctx)
	if p.Role != RoleWorker {
		return nil
	}
	if strings.HasSuffix(method, "/DoAction") && (action == "" || fleetActions[action]) {
		return nil
	}
	// The work stream, and the DoGet of an intermediate (DoGet refuses a
	// worker key any other ticket).
	if strings.HasSuffix(method, "/DoExchange") || strings.HasSuffix(method, "/DoGet") {
		return nil
	}
	what := strings.TrimPrefix(action, ActionPrefix)
	if what == "" {
		what = method[strings.LastIndexByte(method, '/')+1:]
	}
	return errdefs.WithHint(errdefs.ErrPermissionDenied, "use a reader, writer or admin key for anything but a worker's calls",
		"user %s (worker) may not call %s: a worker key makes only the fleet's calls", p.User, what)
}
