package flight

import (
	"context"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// GarbageCollector collects the garbage of the server's warehouse for
// ActionGC. The CLI's embedded gc implements it too, and so does Client:
// `lakehouse gc` talks to either one the same way.
type GarbageCollector interface {
	// GC expires the branches of failed runs past their retention and
	// deletes the warehouse files nothing kept references (see
	// catalog.Local.GC). A bad body is errdefs.ErrInvalidArgument, and
	// nothing changes. When some files could not be deleted it returns
	// the report of what was, and an error.
	GC(ctx context.Context, b GCBody) (*GCReport, error)
}

// registerGC adds the gc action (admin only).
func (s *Server) registerGC() {
	s.register(ActionGC, "delete the warehouse files no branch or tag can reach (admin)", func(ctx context.Context, body []byte, send func(any) error) error {
		var b GCBody
		if err := decode(ActionGC, body, &b); err != nil {
			return err
		}
		if err := s.authorize(ctx, PermAdmin, b); err != nil {
			return err
		}
		if s.opts.GC == nil {
			return errorf(errdefs.ErrFailedPrecondition, "this server collects no garbage")
		}
		rep, err := s.opts.GC.GC(ctx, b)
		if rep != nil {
			if serr := send(rep); serr != nil {
				return serr
			}
		}
		if err == nil && rep != nil {
			s.opts.Log.Info("gc", "user", PrincipalFrom(ctx).User, "dry_run", b.DryRun,
				"deleted", len(rep.Deleted), "bytes", rep.DeletedBytes)
		}
		return err
	})
}
