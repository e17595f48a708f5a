package flight

import (
	"context"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
)

// Intermediates the control plane holds. The inputs it scanned and the
// outputs of SQL models are in the control plane's Options.Intermediates;
// their tickets name fleet.ControlName as the worker, carry no lease (the
// control plane has none) and are signed with the registry's ticket key.
// A worker fetches them with FetchIntermediate from the control plane it
// joined, under its worker key.

// controlTicket checks a handoff ticket presented to a control plane: the
// caller's key (a worker's or an admin's), the signature under the fleet's
// ticket key, and that it names an intermediate of the control plane.
func (s *Server) controlTicket(ctx context.Context, si *signedIntermediate) (IntermediateTicket, error) {
	if err := s.authorize(ctx, PermWork, nil); err != nil {
		return IntermediateTicket{}, err
	}
	t, err := VerifyIntermediate(s.opts.Fleet.TicketKey(), si.Body, si.Sig, time.Now())
	if err != nil {
		return t, err
	}
	if t.Worker != fleet.ControlName {
		return t, errdefs.WithHint(errdefs.ErrNotFound, "send the ticket to the worker it names",
			"model %s of run %s is held by worker %s, and this is the control plane", t.Model, t.Run, t.Worker)
	}
	if t.Lease != "" {
		return t, errdefs.WithHint(errdefs.ErrInvalidArgument, "ask the control plane for a new ticket",
			"the ticket of model %s of run %s names the control plane under lease %s: the control plane holds no lease",
			t.Model, t.Run, t.Lease)
	}
	return t, nil
}
