package duckdb

import (
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	bindings "github.com/duckdb/duckdb-go-bindings"
	"github.com/lakehouse-dev/lakehouse/internal/recycle"
)

// Combine makes Next return batches of at least rows rows (the last one
// may hold fewer; a batch also ends before a string column passes
// maxStringBytes) instead of one per DuckDB chunk. Readers of a result
// pay per batch, so a 10M-row table in 2,048-row chunks computes and
// writes slowly. Call it before the first Next.
//
// When every column is a number, boolean, date, time, timestamp, string
// or blob, the batch is built straight from DuckDB's vectors: one copy,
// into buffers that are reused once the batches holding them are
// released. Other results go through DuckDB's Arrow conversion one chunk
// at a time and are concatenated.
//
// A result with a sparse union (nested or not) stays one batch per chunk:
// arrow-go cannot concatenate those.
func (r *Reader) Combine(rows int) {
	if r.schema != nil && !recycle.Concatenable(r.schema.Fields()) {
		return
	}
	r.combine = max(rows, 1)
}

// CombineWithin is Combine, except that a batch also ends once wait has
// passed since its first chunk arrived, so a slow query still shows its
// first rows early (a chunk being computed is waited for).
func (r *Reader) CombineWithin(rows int, wait time.Duration) {
	r.Combine(rows)
	r.combineWait = wait
}

// maxStringBytes bounds one string column of a combined batch, so its
// 32-bit offsets cannot overflow.
var maxStringBytes int64 = 1 << 30

// column is how a result column is copied from DuckDB's vectors.
type column struct {
	kind  int // colFixed, colBool or colString
	width int // bytes per value (colFixed) or per offset (colString)
}

const (
	colFixed = iota + 1
	colBool
	colString
)

// directColumns returns how each column is copied, or nil when some
// column needs DuckDB's Arrow conversion (decimals, intervals, nested
// types, enums, UUIDs, or an Arrow type DuckDB's settings changed).
func directColumns(schema *arrow.Schema, types []bindings.Type) []column {
	cols := make([]column, len(types))
	for i, t := range types {
		at := schema.Field(i).Type
		fixed := func(id arrow.Type, width int) bool {
			if at.ID() != id {
				return false
			}
			cols[i] = column{kind: colFixed, width: width}
			return true
		}
		unit := func(u arrow.TimeUnit) bool {
			ts, ok := at.(*arrow.TimestampType)
			if !ok || ts.Unit != u {
				return false
			}
			cols[i] = column{kind: colFixed, width: 8}
			return true
		}
		var ok bool
		switch t {
		case bindings.TypeBoolean:
			ok = at.ID() == arrow.BOOL
			cols[i] = column{kind: colBool}
		case bindings.TypeTinyInt:
			ok = fixed(arrow.INT8, 1)
		case bindings.TypeSmallInt:
			ok = fixed(arrow.INT16, 2)
		case bindings.TypeInteger:
			ok = fixed(arrow.INT32, 4)
		case bindings.TypeBigInt:
			ok = fixed(arrow.INT64, 8)
		case bindings.TypeUTinyInt:
			ok = fixed(arrow.UINT8, 1)
		case bindings.TypeUSmallInt:
			ok = fixed(arrow.UINT16, 2)
		case bindings.TypeUInteger:
			ok = fixed(arrow.UINT32, 4)
		case bindings.TypeUBigInt:
			ok = fixed(arrow.UINT64, 8)
		case bindings.TypeFloat:
			ok = fixed(arrow.FLOAT32, 4)
		case bindings.TypeDouble:
			ok = fixed(arrow.FLOAT64, 8)
		case bindings.TypeDate:
			ok = fixed(arrow.DATE32, 4)
		case bindings.TypeTime:
			tt, isTime := at.(*arrow.Time64Type)
			ok = isTime && tt.Unit == arrow.Microsecond
			cols[i] = column{kind: colFixed, width: 8}
		case bindings.TypeTimestamp, bindings.TypeTimestampTZ:
			ok = unit(arrow.Microsecond)
		case bindings.TypeTimestampS:
			ok = unit(arrow.Second)
		case bindings.TypeTimestampMS:
			ok = unit(arrow.Millisecond)
		case bindings.TypeTimestampNS:
			ok = unit(arrow.Nanosecond)
		case bindings.TypeVarchar, bindings.TypeBlob:
			switch at.ID() {
			case arrow.STRING, arrow.BINARY:
				ok, cols[i] = t == bindings.TypeVarchar == (at.ID() == arrow.STRING), column{kind: colString, width: 4}
			case arrow.LARGE_STRING, arrow.LARGE_BINARY:
				ok, cols[i] = t == bindings.TypeVarchar == (at.ID() == arrow.LARGE_STRING), column{kind: colString, width: 8}
			}
		}
		if !ok {
			return nil
		}
	}
	return cols
}

// nextCombined fetches chunks until the batch is full and combines them.
// Directly copied columns are copied chunk by chunk as they arrive, each
// chunk freed at once: DuckDB's chunks are never held (holding a batch's
// worth of them costs DuckDB about half again the CPU of the query).
func (r *Reader) nextCombined() bool {
	var chunks []bindings.DataChunk // for DuckDB's conversion only
	defer func() {
		for i := range chunks {
			bindings.DestroyDataChunk(&chunks[i])
		}
	}()
	var b *combined
	if r.cols != nil {
		b = r.newCombined()
		defer b.release()
	}
	strBytes := make([]int64, len(r.cols))
	add := make([]int64, len(r.cols))
	rows := 0
	var first time.Time
	for rows < r.combine && !r.eof {
		if r.combineWait > 0 && rows > 0 && time.Since(first) >= r.combineWait {
			break
		}
		if err := r.ctx.Err(); err != nil {
			r.err = err
			return false
		}
		chunk := r.pending
		r.pending = bindings.DataChunk{}
		if chunk.Ptr == nil {
			chunk = bindings.FetchChunk(r.res)
		}
		if chunk.Ptr == nil {
			if msg := bindings.ResultError(&r.res); msg != "" {
				r.err = ctxErr(r.ctx, newError(msg, ""))
				return false
			}
			r.eof = true
			break
		}
		n := int(bindings.DataChunkGetSize(chunk))
		if n == 0 {
			bindings.DestroyDataChunk(&chunk)
			continue
		}
		if rows == 0 {
			first = time.Now()
		}
		if r.cols == nil {
			chunks = append(chunks, chunk)
			rows += n
			continue
		}
		full := false
		for c, col := range r.cols {
			add[c] = 0
			if col.kind == colString {
				add[c] = chunkStringBytes(bindings.DataChunkGetVector(chunk, bindings.IdxT(c)), n)
				full = full || strBytes[c]+add[c] > maxStringBytes
			}
		}
		if full && rows > 0 {
			r.pending = chunk // starts the next batch
			break
		}
		for c, col := range r.cols {
			if col.kind == colString && col.width == 4 && add[c] > math.MaxInt32 {
				bindings.DestroyDataChunk(&chunk)
				r.err = fmt.Errorf("duckdb: column %s holds more than 2 GiB of strings in %d rows", r.schema.Field(c).Name, n)
				return false
			}
			strBytes[c] += add[c]
		}
		b.add(chunk, n, add)
		bindings.DestroyDataChunk(&chunk)
		rows += n
	}
	if rows == 0 {
		return false
	}
	if b != nil {
		r.cur = b.finish()
		return true
	}
	rec, err := r.convert(chunks, rows)
	if err != nil {
		r.err = err
		return false
	}
	r.cur = rec
	return true
}

// convert turns chunks into Arrow with DuckDB's conversion and joins them.
func (r *Reader) convert(chunks []bindings.DataChunk, rows int) (arrow.RecordBatch, error) {
	parts := make([]arrow.RecordBatch, 0, len(chunks))
	defer func() {
		for _, p := range parts {
			p.Release()
		}
	}()
	for _, chunk := range chunks {
		rec, ed := bindings.DataChunkToArrowArray(r.opts, r.schema, chunk)
		if bindings.ErrorDataHasError(ed) {
			err := fmt.Errorf("duckdb: converting a result chunk to Arrow: %s", bindings.ErrorDataMessage(ed))
			bindings.DestroyErrorData(&ed)
			return nil, err
		}
		bindings.DestroyErrorData(&ed)
		parts = append(parts, rec)
	}
	if len(parts) == 1 {
		parts[0].Retain()
		return parts[0], nil
	}
	cols := make([]arrow.Array, r.schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	arrs := make([]arrow.Array, len(parts))
	for i := range cols {
		for j, p := range parts {
			arrs[j] = p.Column(i)
		}
		c, err := array.Concatenate(arrs, memory.DefaultAllocator)
		if err != nil {
			return nil, fmt.Errorf("duckdb: combining result chunks: %w", err)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(r.schema, cols, int64(rows)), nil
}

// buffer is a buffer of n bytes from the reader's pool (not zeroed).
func (r *Reader) buffer(n int) *memory.Buffer {
	b := memory.NewResizableBuffer(r.pool)
	b.Resize(n)
	return b
}

// stringT is DuckDB's duckdb_string_t: a 4-byte length, then either the
// string itself (up to 12 bytes) or a 4-byte prefix and a pointer.
const stringTSize = 16

func stringAt(data unsafe.Pointer, i int) []byte {
	p := unsafe.Add(data, i*stringTSize)
	n := *(*uint32)(p)
	if n <= 12 {
		return unsafe.Slice((*byte)(unsafe.Add(p, 4)), n)
	}
	return unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Add(p, 8))), n)
}

// valid reports whether row i of a vector with validity mask is not NULL.
func valid(mask unsafe.Pointer, i int) bool {
	return mask == nil || *(*uint64)(unsafe.Add(mask, i/64*8))&(1<<(i%64)) != 0
}

// chunkStringBytes is the bytes of a string vector's non-NULL values.
func chunkStringBytes(vec bindings.Vector, n int) int64 {
	data, mask := bindings.VectorGetData(vec), bindings.VectorGetValidity(vec)
	var total int64
	for i := range n {
		if valid(mask, i) {
			total += int64(*(*uint32)(unsafe.Add(data, i*stringTSize)))
		}
	}
	return total
}
