package flight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Ticket is the JSON of a query's Flight ticket: the id of a query
// GetFlightInfo started, or (for a one-shot DoGet) the query itself.
type Ticket struct {
	QueryID string        `json:"query_id,omitempty"`
	Query   *QueryCommand `json:"query,omitempty"`
}

func (s *Server) registerQuery() {
	unary(s, ActionExplainQuery, "plan a query without running it", PermRead, func(ctx context.Context, q QueryCommand) (any, error) {
		if s.opts.Queries == nil {
			return nil, errorf(errdefs.ErrFailedPrecondition, "this server runs no queries")
		}
		return s.opts.Queries.Explain(ctx, q)
	})
}

// readCommand decodes a query command of a descriptor or ticket.
func readCommand(b []byte) (QueryCommand, error) {
	var q QueryCommand
	if err := decode("query", b, &q); err != nil {
		return q, err
	}
	// An empty SQL is the query engine's error, as in embedded mode.
	return q, nil
}

// GetFlightInfo starts the query of a command descriptor and answers with
// its schema and one endpoint whose ticket DoGet streams. Errors in the
// SQL or the refs come back here, before any row.
func (s *Server) GetFlightInfo(ctx context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	if desc.GetType() != flight.DescriptorCMD {
		return nil, ToStatus(errdefs.WithHint(errdefs.ErrInvalidArgument, "send a command descriptor with a JSON query",
			"path descriptors are not served"))
	}
	if s.opts.Queries == nil {
		return nil, ToStatus(errorf(errdefs.ErrFailedPrecondition, "this server runs no queries"))
	}
	q, err := readCommand(desc.GetCmd())
	if err != nil {
		return nil, ToStatus(err)
	}
	s.opts.Metrics.request("GetFlightInfo")
	start := time.Now()
	// The query outlives this call: it runs until DoGet has read it. But a
	// call that ends while the query starts (the client went away, the
	// server stops) takes the query with it, or the call would wait for
	// the query however long it runs.
	qctx, cancel := context.WithCancel(withPrincipal(context.Background(), PrincipalFrom(ctx)))
	stopCancel := context.AfterFunc(ctx, cancel)
	r, closeFn, err := s.opts.Queries.Run(qctx, q)
	if !stopCancel() && err == nil {
		closeFn()
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		s.opts.Metrics.done("GetFlightInfo", time.Since(start), err)
		return nil, ToStatus(err)
	}
	id := newID()
	s.mu.Lock()
	s.pending[id] = &pendingQuery{reader: r, close: func() error { defer cancel(); return closeFn() }, cancel: cancel,
		user: PrincipalFrom(ctx).User, expires: time.Now().Add(s.opts.QueryTTL)}
	s.mu.Unlock()
	s.opts.Metrics.done("GetFlightInfo", time.Since(start), nil)
	ticket, _ := json.Marshal(Ticket{QueryID: id})
	return &flight.FlightInfo{
		Schema:           flight.SerializeSchema(r.Schema(), memory.DefaultAllocator),
		FlightDescriptor: desc,
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: ticket}}},
		TotalRecords:     -1,
		TotalBytes:       -1,
	}, nil
}

// DoGet streams the rows of a query as Arrow record batches.
func (s *Server) DoGet(tkt *flight.Ticket, stream flight.FlightService_DoGetServer) error {
	ctx := stream.Context()
	var t Ticket
	if err := decode("ticket", tkt.GetTicket(), &t); err != nil {
		return ToStatus(err)
	}
	var q *pendingQuery
	switch {
	case t.QueryID != "":
		s.mu.Lock()
		q = s.pending[t.QueryID]
		delete(s.pending, t.QueryID)
		s.mu.Unlock()
		if q == nil {
			return ToStatus(errdefs.WithHint(errdefs.ErrNotFound, "run the query again (GetFlightInfo, then DoGet within 5 minutes)",
				"query %s is unknown: it was read already, or it expired", t.QueryID))
		}
		if s.opts.Auth != nil && q.user != PrincipalFrom(ctx).User {
			q.close()
			return ToStatus(errorf(errdefs.ErrPermissionDenied, "query %s belongs to another user", t.QueryID))
		}
	case t.Query != nil:
		if s.opts.Queries == nil {
			return ToStatus(errorf(errdefs.ErrFailedPrecondition, "this server runs no queries"))
		}
		if t.Query.SQL == "" {
			return ToStatus(errorf(errdefs.ErrInvalidArgument, "the ticket's query has no SQL"))
		}
		r, closeFn, err := s.opts.Queries.Run(ctx, *t.Query)
		if err != nil {
			return ToStatus(err)
		}
		q = &pendingQuery{reader: r, close: closeFn}
	default:
		return ToStatus(errorf(errdefs.ErrInvalidArgument, "the ticket names no query"))
	}
	defer q.close()
	// The query ends with the call: when the client goes away or the
	// server stops, a batch being computed is interrupted.
	if q.cancel != nil {
		defer context.AfterFunc(ctx, q.cancel)()
	}
	start := time.Now()
	err := s.stream(ctx, q, stream)
	s.opts.Metrics.query(time.Since(start), err)
	return ToStatus(err)
}

func (s *Server) stream(ctx context.Context, q *pendingQuery, stream flight.FlightService_DoGetServer) error {
	w := flight.NewRecordWriter(stream, ipc.WithSchema(q.reader.Schema()))
	defer w.Close()
	for q.reader.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.Write(q.reader.RecordBatch()); err != nil {
			return err
		}
	}
	return q.reader.Err()
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
