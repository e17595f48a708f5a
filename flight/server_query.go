package flight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/recycle"
)

// Ticket is the JSON of a query's Flight ticket: the id of a query
// GetFlightInfo started, or (for a one-shot DoGet) the query itself.
type Ticket struct {
	QueryID string        `json:"query_id,omitempty"`
	Query   *QueryCommand `json:"query,omitempty"`
	// A query the control plane placed on this worker (server_place.go).
	placedTicket
	// An intermediate this worker holds (handoff.go).
	intermediateTicket
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
	if info, err := s.placeInfo(ctx, desc, q); info != nil || err != nil {
		s.opts.Metrics.done("GetFlightInfo", time.Since(start), err)
		return info, ToStatus(err)
	}
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
	case t.Intermediate != nil:
		return ToStatus(s.doGetIntermediate(ctx, t.Intermediate, stream))
	case PrincipalFrom(ctx).Role == RoleWorker:
		return ToStatus(errdefs.WithHint(errdefs.ErrPermissionDenied, "use a reader, writer or admin key for anything but a worker's calls",
			"user %s (worker) may not read a query: a worker key reads only intermediates", PrincipalFrom(ctx).User))
	case t.Placed != nil:
		var err error
		if q, err = s.openPlaced(ctx, t); err != nil {
			return ToStatus(err)
		}
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
	s.opts.Metrics.QueryStarted()
	err := s.stream(ctx, q, stream)
	s.opts.Metrics.query(time.Since(start), err)
	return ToStatus(err)
}

// Batches smaller than these are combined before they go on the wire:
// DuckDB produces 2,048-row vectors, and each Flight message has a fixed
// cost (framing, a gRPC write, a read and a decode on the client), so a
// 10M-row result in 2,048-row messages moves at about half the rate of the
// same rows in 64K-row ones (bench/client_stream.py). A batch is sent when
// it holds streamBatchRows rows or streamBatchBytes bytes, or when
// streamBatchWait passed since its first rows arrived (a slow query still
// shows rows early).
const (
	streamBatchRows  = 64 << 10
	streamBatchBytes = 8 << 20
	streamBatchWait  = 100 * time.Millisecond
	// streamCombinedBytes is the size of the batches a DuckDB reader
	// builds itself (see stream): fewer, larger messages cost less per
	// byte on both ends (256K rows of 4 BIGINTs).
	streamCombinedBytes = 8 << 20
)

// stream sends the rows of q. One goroutine reads and combines DuckDB's
// batches while this one writes the previous to the client, so the query
// and the network overlap; the reader is done with q when stream returns.
func (s *Server) stream(ctx context.Context, q *pendingQuery, stream flight.FlightService_DoGetServer) error {
	// Batches go out as dataMessages: the codec hands their buffers to
	// gRPC without copying them.
	w, write := newDataWriter(stream.SendMsg, q.reader.Schema())
	defer w.Close()
	// A DuckDB reader builds batches of that size straight from its
	// vectors, into buffers it reuses once a batch is written: no
	// per-chunk Arrow conversion, no concatenation, little garbage.
	if c, ok := q.reader.(interface {
		CombineWithin(rows int, wait time.Duration)
	}); ok {
		c.CombineWithin(combinedRows(q.reader.Schema()), streamBatchWait)
	}
	batches := make(chan arrow.RecordBatch, 2)
	stop := make(chan struct{})
	var readErr error
	go func() {
		defer close(batches)
		readErr = rechunk(q.reader, memory.DefaultAllocator, func(b arrow.RecordBatch) bool {
			select {
			case batches <- b:
				return true
			case <-stop:
				b.Release()
				return false
			}
		})
	}()
	var err error
	for b := range batches { // ends when the reading goroutine has returned
		if err == nil {
			if err = ctx.Err(); err == nil {
				err = write(b)
			}
			if err != nil {
				close(stop)
			}
		}
		b.Release()
	}
	if err != nil {
		return err
	}
	return readErr
}

// combinedRows is how many rows of schema make a batch of about
// streamCombinedBytes, within [streamBatchRows, 1M] (RowsFor).
func combinedRows(schema *arrow.Schema) int {
	return RowsFor(schema, streamCombinedBytes, streamBatchRows)
}

// RowsFor is how many rows of schema make about size bytes (strings and
// other variable or nested columns counted as 16 bytes a value), within
// [minRows, 1M]: the rows a DuckDB reader combines into one streamed
// batch.
func RowsFor(schema *arrow.Schema, size, minRows int) int {
	width := 0
	for _, f := range schema.Fields() {
		if fw, ok := f.Type.(arrow.FixedWidthDataType); ok && fw.BitWidth() >= 8 {
			width += fw.BitWidth() / 8
		} else {
			width += 16
		}
	}
	return min(max(size/max(width, 1), minRows), 1<<20)
}

// rechunk reads r to its end and passes emit batches of about
// streamBatchRows rows (combined ones allocated from mem); emit owns each
// batch and returns false to stop.
func rechunk(r array.RecordReader, mem memory.Allocator, emit func(arrow.RecordBatch) bool) error {
	var (
		pending []arrow.RecordBatch
		rows    int64
		size    int64
		first   time.Time
	)
	release := func() {
		for _, b := range pending {
			b.Release()
		}
		pending, rows, size = pending[:0], 0, 0
	}
	defer release()
	// flush hands the pending batches to emit as one and reports whether
	// to go on.
	flush := func() (bool, error) {
		if len(pending) == 0 {
			return true, nil
		}
		if len(pending) == 1 {
			b := pending[0]
			pending, rows, size = pending[:0], 0, 0
			return emit(b), nil
		}
		b, err := concatBatches(pending, rows, mem)
		release()
		if err != nil {
			return false, err
		}
		return emit(b), nil
	}
	// Batches arrow-go cannot concatenate (a sparse union) go as they come.
	combine := recycle.Concatenable(r.Schema().Fields())
	for r.Next() {
		b := r.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		if !combine {
			b.Retain()
			if !emit(b) {
				return nil
			}
			continue
		}
		b.Retain()
		if len(pending) == 0 {
			first = time.Now()
		}
		pending = append(pending, b)
		rows += b.NumRows()
		size += batchBytes(b)
		if rows >= streamBatchRows || size >= streamBatchBytes || time.Since(first) >= streamBatchWait {
			if more, err := flush(); !more || err != nil {
				return err
			}
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	_, err := flush()
	return err
}

// concatBatches joins batches of one schema into one of rows rows.
func concatBatches(bs []arrow.RecordBatch, rows int64, mem memory.Allocator) (arrow.RecordBatch, error) {
	schema := bs[0].Schema()
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	parts := make([]arrow.Array, len(bs))
	for i := range cols {
		for j, b := range bs {
			parts[j] = b.Column(i)
		}
		c, err := array.Concatenate(parts, mem)
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	return array.NewRecordBatch(schema, cols, rows), nil
}

// batchBytes is the size of a batch's buffers.
func batchBytes(b arrow.RecordBatch) int64 {
	var n int64
	for _, c := range b.Columns() {
		n += int64(c.Data().SizeInBytes())
	}
	return n
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
