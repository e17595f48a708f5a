package flight

import (
	"context"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Queries of a fleet. A client that follows FlightInfo locations says so
// (QueryCommand.Locations); the control plane then plans its query,
// places it on a worker (Placer) and answers with an endpoint located at
// the worker whose ticket is the signed plan (PlacedQuery). The worker
// (PlacedQueries) checks the ticket and runs the plan. Other clients, and
// every query when no worker can take it, run on the control plane.

// PlacedTicketTTL is how long a placed query's ticket is honoured.
const PlacedTicketTTL = 5 * time.Minute

// Placement is where a Placer put a query.
type Placement struct {
	// Addr is the worker's data plane, host:port.
	Addr string
	// Key signs the ticket (the fleet's ticket key).
	Key []byte
	// Query is the planned query, for the worker; Expires is set by the
	// server.
	Query PlacedQuery
}

// Placer plans and places the queries of a control plane.
type Placer interface {
	// Place plans q and picks a worker for it, avoiding the workers at the
	// addresses of q.Avoid. It returns nil, nil when no worker can take
	// it (none alive, or none reaches the warehouse): the query then runs
	// on the control plane. Its errors are those of planning the query.
	Place(ctx context.Context, q QueryCommand, user string) (*Placement, error)
}

// PlacedQueries runs the queries placed on a worker.
type PlacedQueries interface {
	// Ticket is the worker's name, its current lease and the fleet's
	// ticket key; ok is false while the worker has not joined.
	Ticket() (name, lease string, key []byte, ok bool)
	// RunPlaced starts a verified placed query. Errors:
	// errdefs.ErrFailedPrecondition when the worker cannot read the
	// query's warehouse, then those of query.Execute.
	RunPlaced(ctx context.Context, p PlacedQuery) (r array.RecordReader, close func() error, err error)
}

// placeInfo answers GetFlightInfo with an endpoint at a worker, or nil
// when the query runs here.
func (s *Server) placeInfo(ctx context.Context, desc *flight.FlightDescriptor, q QueryCommand) (*flight.FlightInfo, error) {
	if s.opts.Place == nil || !q.Locations {
		return nil, nil
	}
	pl, err := s.opts.Place.Place(ctx, q, PrincipalFrom(ctx).User)
	if err != nil || pl == nil {
		return nil, err
	}
	pl.Query.ID = newID()
	pl.Query.User = PrincipalFrom(ctx).User
	pl.Query.Expires = time.Now().Add(PlacedTicketTTL)
	ticket, err := SignPlaced(pl.Key, pl.Query)
	if err != nil {
		return nil, err
	}
	scheme := "grpc+tcp://"
	if s.opts.TLS != nil {
		scheme = "grpc+tls://"
	}
	s.opts.Log.Info("query placed", "query", pl.Query.ID, "worker", pl.Query.Worker, "addr", pl.Addr, "user", pl.Query.User)
	return &flight.FlightInfo{
		// The schema comes with the worker's stream.
		FlightDescriptor: desc,
		Endpoint: []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: ticket},
			Location: []*flight.Location{{Uri: scheme + pl.Addr}}}},
		TotalRecords: -1,
		TotalBytes:   -1,
	}, nil
}

// openPlaced checks a placed ticket on a worker and starts its query.
func (s *Server) openPlaced(ctx context.Context, t Ticket) (*pendingQuery, error) {
	if s.opts.Placed == nil {
		return nil, errdefs.WithHint(errdefs.ErrNotFound, "send the ticket to the worker the FlightInfo endpoint names",
			"this server (--role %s) runs no placed queries", s.opts.Role)
	}
	name, lease, key, ok := s.opts.Placed.Ticket()
	if !ok {
		return nil, errdefs.WithHint(errdefs.ErrUnavailable, "retry once the worker joined its control plane",
			"this worker has not joined its control plane yet")
	}
	p, err := VerifyPlaced(key, t.Placed, t.Sig, time.Now())
	if err != nil {
		return nil, err
	}
	if p.Worker != name {
		return nil, errdefs.WithHint(errdefs.ErrNotFound, "send the ticket to the worker the FlightInfo endpoint names",
			"placed query %s is for worker %s, and this is %s", p.ID, p.Worker, name)
	}
	if p.Lease != lease {
		return nil, errdefs.WithHint(errdefs.ErrNotFound, "run the query again (GetFlightInfo)",
			"placed query %s was placed on an earlier registration of worker %s", p.ID, name)
	}
	r, closeFn, err := s.opts.Placed.RunPlaced(ctx, p)
	if err != nil {
		return nil, err
	}
	s.opts.Log.Info("placed query running", "query", p.ID, "user", p.User, "tables", len(p.Tables))
	return &pendingQuery{reader: r, close: closeFn}, nil
}
