package flightsql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	fsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// pending is a statement GetFlightInfo started, waiting for its DoGet.
type pending struct {
	reader array.RecordReader
	// close ends the query and releases the reader; cancel interrupts
	// the query (close calls it too).
	close   func()
	cancel  context.CancelFunc
	user    string
	expires time.Time
}

// GetFlightInfoStatement starts a query where the call's session or
// headers point (see target) and answers with its schema and a ticket.
func (s *Server) GetFlightInfoStatement(ctx context.Context, cmd fsql.StatementQuery, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	if len(cmd.GetTransactionId()) > 0 {
		return nil, noTransactions()
	}
	q, err := s.target(ctx)
	if err != nil {
		return nil, status(err)
	}
	q.SQL = cmd.GetQuery()
	return s.start(ctx, q, desc)
}

// GetSchemaStatement plans and starts the query to learn its schema.
func (s *Server) GetSchemaStatement(ctx context.Context, cmd fsql.StatementQuery, desc *arrowflight.FlightDescriptor) (*arrowflight.SchemaResult, error) {
	q, err := s.target(ctx)
	if err != nil {
		return nil, status(err)
	}
	q.SQL = cmd.GetQuery()
	return s.schema(ctx, q)
}

// schema runs q only to read its result's schema.
func (s *Server) schema(ctx context.Context, q flight.QueryCommand) (*arrowflight.SchemaResult, error) {
	if err := allowRead(ctx); err != nil {
		return nil, status(err)
	}
	r, closeFn, err := s.opts.Queries.Run(ctx, q)
	if err != nil {
		return nil, status(err)
	}
	defer closeFn()
	return &arrowflight.SchemaResult{Schema: arrowflight.SerializeSchema(r.Schema(), s.opts.Mem)}, nil
}

// start runs q and keeps it for the DoGet of the ticket it answers with.
// The query outlives the call, but a call that ends while the query
// starts takes the query with it.
func (s *Server) start(ctx context.Context, q flight.QueryCommand, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	if err := allowRead(ctx); err != nil {
		return nil, status(err)
	}
	qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	r, closeFn, err := s.opts.Queries.Run(qctx, q)
	if !stop() && err == nil {
		closeFn()
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		return nil, status(err)
	}
	handle := newHandle()
	p := &pending{reader: r, close: func() { closeFn(); cancel() }, cancel: cancel,
		user: flight.PrincipalFrom(ctx).User, expires: time.Now().Add(s.opts.QueryTTL)}
	s.mu.Lock()
	s.pending[handle] = p
	s.mu.Unlock()
	ticket, err := fsql.CreateStatementQueryTicket([]byte(handle))
	if err != nil {
		return nil, status(err)
	}
	return &arrowflight.FlightInfo{
		Schema:           arrowflight.SerializeSchema(r.Schema(), s.opts.Mem),
		FlightDescriptor: desc,
		Endpoint:         []*arrowflight.FlightEndpoint{{Ticket: &arrowflight.Ticket{Ticket: ticket}}},
		TotalRecords:     -1,
		TotalBytes:       -1,
	}, nil
}

// expire drops the statements whose DoGet did not come in time, and the
// prepared statements and sessions unused for long. s.mu is held.
func (s *Server) expire(now time.Time) {
	for h, p := range s.pending {
		if now.After(p.expires) {
			p.close()
			delete(s.pending, h)
		}
	}
	for h, p := range s.prepared {
		if now.Sub(p.used) > s.opts.PreparedTTL {
			delete(s.prepared, h)
		}
	}
	for id, sess := range s.sessions {
		if now.Sub(sess.used) > s.opts.PreparedTTL {
			delete(s.sessions, id)
		}
	}
}

// DoGetStatement streams the rows of a statement GetFlightInfo started.
func (s *Server) DoGetStatement(ctx context.Context, t fsql.StatementQueryTicket) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	handle := string(t.GetStatementHandle())
	s.mu.Lock()
	p := s.pending[handle]
	delete(s.pending, handle)
	s.mu.Unlock()
	if p == nil {
		return nil, nil, status(errdefs.WithHint(errdefs.ErrNotFound, "execute the statement again (its ticket is read once, within 5 minutes)",
			"statement %s is unknown: it was read already, or it expired", handle))
	}
	if u := flight.PrincipalFrom(ctx).User; u != p.user {
		p.close()
		return nil, nil, status(errdefs.New(errdefs.ErrPermissionDenied, "statement %s belongs to another user", handle))
	}
	return p.reader.Schema(), s.stream(ctx, p), nil
}

// Batches of a DuckDB result are built to about this many bytes (strings
// and nested values counted as 16 bytes): fewer, larger messages cost less
// per row on both ends, up to a point. Flight SQL's clients (the ADBC
// driver's Go gRPC client) allocate and decode each message afresh: 2 MiB
// messages streamed 10M rows 8-10 % faster through ADBC than the 8 MiB of
// the server's own protocol (bench/adbc_stream.py: 1.29-1.32x of
// lakehouse.Client against 1.39-1.40x, interleaved runs). combineWait
// bounds how long a batch waits for rows, so a slow query still shows its
// first rows early.
const (
	combineBytes = 2 << 20
	combineWait  = 100 * time.Millisecond
)

// stream sends the batches of p's reader and closes p at the end, or when
// the call ends.
func (s *Server) stream(ctx context.Context, p *pending) <-chan arrowflight.StreamChunk {
	if c, ok := p.reader.(interface {
		CombineWithin(rows int, wait time.Duration)
	}); ok {
		c.CombineWithin(combineRows(p.reader.Schema()), combineWait)
	}
	ch := make(chan arrowflight.StreamChunk, 2)
	go func() {
		defer close(ch)
		defer p.close()
		// A panic reading the result fails this stream, not the server
		// (the calls' own panics are the interceptors').
		defer func() {
			if r := recover(); r != nil {
				select {
				case ch <- arrowflight.StreamChunk{Err: status(errdefs.New(errdefs.ErrInternal, "the query's stream failed on a bug of the server: %v", r))}:
				case <-ctx.Done():
				}
			}
		}()
		stop := context.AfterFunc(ctx, p.cancel)
		defer stop()
		for p.reader.Next() {
			b := p.reader.RecordBatch()
			if b.NumRows() == 0 {
				continue
			}
			b.Retain()
			select {
			case ch <- arrowflight.StreamChunk{Data: b}:
			case <-ctx.Done():
				b.Release()
				return
			}
		}
		if err := p.reader.Err(); err != nil {
			select {
			case ch <- arrowflight.StreamChunk{Err: status(err)}:
			case <-ctx.Done():
			}
		}
	}()
	return ch
}

// combineRows is how many rows of schema make about combineBytes, from
// 16K to 1M.
func combineRows(schema *arrow.Schema) int {
	return flight.RowsFor(schema, combineBytes, 16<<10)
}

func newHandle() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
