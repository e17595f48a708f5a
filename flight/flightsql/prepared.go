package flightsql

import (
	"context"
	"time"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	fsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// prepared is a prepared statement: a query, where it runs, and the
// parameters bound last.
type prepared struct {
	query  flight.QueryCommand
	params []string // SQL literals, one per placeholder (nil: none bound)
	holes  int      // the number of placeholders
	user   string
	used   time.Time
}

// CreatePreparedStatement keeps a query to run at the ref and namespace
// the call points to (see target). A query without parameters is planned
// now, so that its errors come back here.
func (s *Server) CreatePreparedStatement(ctx context.Context, req fsql.ActionCreatePreparedStatementRequest) (fsql.ActionCreatePreparedStatementResult, error) {
	var res fsql.ActionCreatePreparedStatementResult
	if len(req.GetTransactionId()) > 0 {
		return res, noTransactions()
	}
	if err := allowRead(ctx); err != nil {
		return res, status(err)
	}
	q, err := s.target(ctx)
	if err != nil {
		return res, status(err)
	}
	q.SQL = req.GetQuery()
	holes, err := placeholders(q.SQL)
	if err != nil {
		return res, status(err)
	}
	if holes == 0 {
		if _, err := s.opts.Queries.Explain(ctx, q); err != nil {
			return res, status(err)
		}
	}
	handle := newHandle()
	s.mu.Lock()
	s.prepared[handle] = &prepared{query: q, holes: holes, user: flight.PrincipalFrom(ctx).User, used: time.Now()}
	s.mu.Unlock()
	isUpdate := false
	res.Handle = []byte(handle)
	res.IsUpdate = &isUpdate
	return res, nil
}

// lookup returns the caller's prepared statement of handle and marks it
// used.
func (s *Server) lookup(ctx context.Context, handle []byte) (*prepared, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.prepared[string(handle)]
	if p == nil {
		return nil, errdefs.WithHint(errdefs.ErrNotFound, "prepare it again (an unused one is dropped after an hour)",
			"prepared statement %s is unknown: it was closed, or it expired", handle)
	}
	if p.user != flight.PrincipalFrom(ctx).User {
		return nil, errdefs.New(errdefs.ErrPermissionDenied, "prepared statement %s belongs to another user", handle)
	}
	p.used = time.Now()
	return p, nil
}

// bound is the query of the caller's prepared statement of handle, with
// its parameters in place.
func (s *Server) bound(ctx context.Context, handle []byte) (flight.QueryCommand, error) {
	p, err := s.lookup(ctx, handle)
	if err != nil {
		return flight.QueryCommand{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := p.query
	if p.holes == 0 && p.params == nil {
		return q, nil
	}
	sql, err := bind(q.SQL, p.params)
	if err != nil {
		return q, err
	}
	q.SQL = sql
	return q, nil
}

func (s *Server) GetFlightInfoPreparedStatement(ctx context.Context, cmd fsql.PreparedStatementQuery, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	q, err := s.bound(ctx, cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, status(err)
	}
	return s.start(ctx, q, desc)
}

func (s *Server) GetSchemaPreparedStatement(ctx context.Context, cmd fsql.PreparedStatementQuery, desc *arrowflight.FlightDescriptor) (*arrowflight.SchemaResult, error) {
	q, err := s.bound(ctx, cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, status(err)
	}
	return s.schema(ctx, q)
}

// DoPutPreparedStatementQuery binds parameters: one row, a column per
// placeholder (no rows unbinds them).
func (s *Server) DoPutPreparedStatementQuery(ctx context.Context, cmd fsql.PreparedStatementQuery, r arrowflight.MessageReader, _ arrowflight.MetadataWriter) ([]byte, error) {
	p, err := s.lookup(ctx, cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, status(err)
	}
	params, err := readParams(r)
	if err != nil {
		return nil, status(err)
	}
	s.mu.Lock()
	p.params = params
	s.mu.Unlock()
	return cmd.GetPreparedStatementHandle(), nil
}

func (s *Server) ClosePreparedStatement(ctx context.Context, req fsql.ActionClosePreparedStatementRequest) error {
	if _, err := s.lookup(ctx, req.GetPreparedStatementHandle()); err != nil {
		return status(err)
	}
	s.mu.Lock()
	delete(s.prepared, string(req.GetPreparedStatementHandle()))
	s.mu.Unlock()
	return nil
}
