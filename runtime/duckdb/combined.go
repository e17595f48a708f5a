package duckdb

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	bindings "github.com/duckdb/duckdb-go-bindings"
	"github.com/lakehouse-dev/lakehouse/internal/recycle"
)

// combined is a batch being built from DuckDB's vectors, chunk by chunk,
// in buffers of the reader's pool (see Reader.Combine).
type combined struct {
	r    *Reader
	rows int
	// room is the rows the buffers were allocated for.
	room int
	// vals holds each column's values (fixed width, booleans as bits)
	// or, for strings, its offsets; data holds the strings' bytes.
	vals, data []*memory.Buffer
	// valid is each column's validity bitmap, nil until a chunk of it
	// has a validity mask.
	valid []*memory.Buffer
}

// chunkRows is the most rows a DuckDB data chunk holds.
const chunkRows = 2048

// newCombined starts a batch with room for the rows Combine asked for.
func (r *Reader) newCombined() *combined {
	if r.pool == nil {
		r.pool = &recycle.Recycler{}
	}
	n := min(r.combine, 1<<20) + chunkRows
	b := &combined{r: r, room: n, vals: make([]*memory.Buffer, len(r.cols)), data: make([]*memory.Buffer, len(r.cols)),
		valid: make([]*memory.Buffer, len(r.cols))}
	for c, col := range r.cols {
		switch col.kind {
		case colFixed:
			b.vals[c] = r.buffer(n * col.width)
		case colBool:
			b.vals[c] = r.buffer(int(bitutil.BytesForBits(int64(n))))
		case colString:
			b.vals[c] = r.buffer((n + 1) * col.width)
			b.data[c] = r.buffer(0)
		}
		b.vals[c].ResizeNoShrink(0)
	}
	return b
}

// grow makes buf n bytes long, its contents kept, doubling its capacity
// when it must grow.
func grow(buf *memory.Buffer, n int) []byte {
	if n > buf.Cap() {
		buf.Reserve(max(n, 2*buf.Cap()))
	}
	buf.ResizeNoShrink(n)
	return buf.Bytes()
}

// add copies the n rows of chunk; strs holds each string column's bytes
// in it.
func (b *combined) add(chunk bindings.DataChunk, n int, strs []int64) {
	for c, col := range b.r.cols {
		vec := bindings.DataChunkGetVector(chunk, bindings.IdxT(c))
		b.addValidity(c, vec, n)
		data := bindings.VectorGetData(vec)
		switch col.kind {
		case colFixed:
			vals := grow(b.vals[c], (b.rows+n)*col.width)
			copy(vals[b.rows*col.width:], unsafe.Slice((*byte)(data), n*col.width))
		case colBool:
			bits := grow(b.vals[c], int(bitutil.BytesForBits(int64(b.rows+n))))
			for i, v := range unsafe.Slice((*byte)(data), n) {
				bitutil.SetBitTo(bits, b.rows+i, v != 0)
			}
		case colString:
			b.addStrings(c, col.width, vec, n, int(strs[c]))
		}
	}
	b.rows += n
}

// addValidity appends the validity of n rows of column c.
func (b *combined) addValidity(c int, vec bindings.Vector, n int) {
	mask := bindings.VectorGetValidity(vec)
	if mask == nil && b.valid[c] == nil {
		return
	}
	if b.valid[c] == nil {
		// The first NULLs may come late: the rows before were valid.
		b.valid[c] = b.r.buffer(int(bitutil.BytesForBits(int64(max(b.room, b.rows+n)))))
		bitutil.SetBitsTo(grow(b.valid[c], int(bitutil.BytesForBits(int64(b.rows)))), 0, int64(b.rows), true)
	}
	bits := grow(b.valid[c], int(bitutil.BytesForBits(int64(b.rows+n))))
	if mask == nil {
		bitutil.SetBitsTo(bits, int64(b.rows), int64(n), true)
		return
	}
	bitutil.CopyBitmap(unsafe.Slice((*byte)(mask), bitutil.BytesForBits(int64(n))), 0, n, bits, b.rows)
}

// addStrings appends n strings of column c (size bytes in all) as Arrow
// offsets of width bytes and data.
func (b *combined) addStrings(c, width int, vec bindings.Vector, n, size int) {
	pos := b.data[c].Len()
	data := grow(b.data[c], pos+size)
	offsets := grow(b.vals[c], (b.rows+n+1)*width)
	put := func(row int) {
		if width == 4 {
			*(*int32)(unsafe.Pointer(&offsets[row*4])) = int32(pos)
		} else {
			*(*int64)(unsafe.Pointer(&offsets[row*8])) = int64(pos)
		}
	}
	vals, mask := bindings.VectorGetData(vec), bindings.VectorGetValidity(vec)
	for i := range n {
		put(b.rows + i)
		if valid(mask, i) {
			pos += copy(data[pos:], stringAt(vals, i))
		}
	}
	put(b.rows + n)
}

// finish turns the buffers into a record batch that owns them.
func (b *combined) finish() arrow.RecordBatch {
	r := b.r
	cols := make([]arrow.Array, len(r.cols))
	for c, col := range r.cols {
		validity, nulls := b.validity(c)
		bufs := []*memory.Buffer{validity, b.vals[c]}
		switch col.kind {
		case colBool:
			clearTail(b.vals[c].Bytes(), b.rows)
		case colString:
			bufs = append(bufs, b.data[c])
		}
		d := array.NewData(r.schema.Field(c).Type, b.rows, bufs, nil, nulls, 0)
		cols[c] = array.MakeFromData(d)
		d.Release()
	}
	b.release()
	rec := array.NewRecordBatch(r.schema, cols, int64(b.rows))
	for _, a := range cols {
		a.Release()
	}
	return rec
}

// validity is column c's bitmap and NULL count; nil without NULLs.
func (b *combined) validity(c int) (*memory.Buffer, int) {
	bm := b.valid[c]
	if bm == nil {
		return nil, 0
	}
	clearTail(bm.Bytes(), b.rows)
	nulls := b.rows - bitutil.CountSetBits(bm.Bytes(), 0, b.rows)
	if nulls == 0 {
		return nil, 0
	}
	return bm, nulls
}

// clearTail zeroes the bits past rows in the last byte of a bitmap.
func clearTail(bits []byte, rows int) {
	if rows%8 != 0 {
		bits[len(bits)-1] &= byte(1)<<(rows%8) - 1
	}
}

// release drops the builder's references to its buffers (finish's
// arrays hold their own).
func (b *combined) release() {
	for _, bufs := range [][]*memory.Buffer{b.vals, b.data, b.valid} {
		for i, buf := range bufs {
			if buf != nil {
				buf.Release()
				bufs[i] = nil
			}
		}
	}
}
