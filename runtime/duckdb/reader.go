package duckdb

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	bindings "github.com/duckdb/duckdb-go-bindings"
	"github.com/lakehouse-dev/lakehouse/internal/recycle"
)

// Reader streams a query result as Arrow record batches, one per DuckDB
// data chunk (up to 2048 rows). It implements array.RecordReader; a batch
// is valid until the next call to Next. Release it when done.
type Reader struct {
	db   *DB
	ctx  context.Context
	refs int64
	done chan struct{}
	// stopped is closed once nothing interrupts the DB for this query.
	stopped <-chan struct{}

	stmt    bindings.PreparedStatement
	res     bindings.Result
	hasRes  bool
	opts    bindings.ArrowOptions
	hasOpts bool
	schema  *arrow.Schema
	cur     arrow.RecordBatch
	err     error
	eof     bool

	combine     int                // see Combine; 0: a batch per chunk
	combineWait time.Duration      // see CombineWithin; 0: none
	cols        []column           // nil: some column needs DuckDB's Arrow conversion
	pending     bindings.DataChunk // fetched, starts the next combined batch
	pool        *recycle.Recycler
}

var _ array.RecordReader = (*Reader)(nil)

// init reads the result's Arrow schema.
func (r *Reader) init() error {
	r.opts = bindings.ResultGetArrowOptions(&r.res)
	r.hasOpts = true
	n := bindings.ColumnCount(&r.res)
	names := make([]string, n)
	types := make([]bindings.LogicalType, n)
	for i := range n {
		names[i] = bindings.ColumnName(&r.res, i)
		types[i] = bindings.ColumnLogicalType(&r.res, i)
	}
	defer func() {
		for i := range types {
			bindings.DestroyLogicalType(&types[i])
		}
	}()
	schema, ed := bindings.NewArrowSchema(r.opts, types, names)
	defer bindings.DestroyErrorData(&ed)
	if bindings.ErrorDataHasError(ed) {
		return fmt.Errorf("duckdb: converting the result schema to Arrow: %s", bindings.ErrorDataMessage(ed))
	}
	r.schema = schema
	ids := make([]bindings.Type, n)
	for i := range types {
		ids[i] = bindings.GetTypeId(types[i])
	}
	r.cols = directColumns(schema, ids)
	return nil
}

// Schema is the result's Arrow schema.
func (r *Reader) Schema() *arrow.Schema { return r.schema }

// Next fetches the next batch. It returns false at the end or on error
// (see Err).
func (r *Reader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.eof || r.err != nil || !r.hasRes {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return false
	}
	if r.combine > 0 {
		return r.nextCombined()
	}
	for {
		chunk := bindings.FetchChunk(r.res)
		if chunk.Ptr == nil {
			if msg := bindings.ResultError(&r.res); msg != "" {
				r.err = ctxErr(r.ctx, newError(msg, ""))
			}
			r.eof = true
			return false
		}
		if bindings.DataChunkGetSize(chunk) == 0 {
			bindings.DestroyDataChunk(&chunk)
			continue
		}
		rec, ed := bindings.DataChunkToArrowArray(r.opts, r.schema, chunk)
		bindings.DestroyDataChunk(&chunk)
		if bindings.ErrorDataHasError(ed) {
			r.err = fmt.Errorf("duckdb: converting a result chunk to Arrow: %s", bindings.ErrorDataMessage(ed))
			bindings.DestroyErrorData(&ed)
			return false
		}
		bindings.DestroyErrorData(&ed)
		r.cur = rec
		return true
	}
}

// RecordBatch is the current batch.
func (r *Reader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch (array.RecordReader's older name).
//
// Deprecated: use RecordBatch.
func (r *Reader) Record() arrow.RecordBatch { return r.cur }

// Err is the error that ended the stream, nil at a clean end.
func (r *Reader) Err() error { return r.err }

// Retain adds a reference.
func (r *Reader) Retain() { atomic.AddInt64(&r.refs, 1) }

// Release drops a reference; the last one frees the DuckDB result (not
// the DB).
func (r *Reader) Release() {
	if atomic.AddInt64(&r.refs, -1) == 0 {
		if r.cur != nil {
			r.cur.Release()
			r.cur = nil
		}
		r.free()
	}
}

func (r *Reader) free() {
	if r.pending.Ptr != nil {
		bindings.DestroyDataChunk(&r.pending)
	}
	if r.hasOpts {
		bindings.DestroyArrowOptions(&r.opts)
		r.hasOpts = false
	}
	if r.hasRes {
		bindings.DestroyResult(&r.res)
		r.hasRes = false
	}
	bindings.DestroyPrepare(&r.stmt)
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	<-r.stopped
}
