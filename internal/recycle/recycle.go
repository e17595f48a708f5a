// Package recycle is a memory.Allocator for the buffers of one stream of
// Arrow batches (a DuckDB result being combined, a query's stream as a
// client receives it): buffers released go back to it and serve later
// batches of about the same size, instead of fresh memory the Go heap has
// to fault in, zero and collect. Concatenable says whether a stream's
// batches can be combined at all.
package recycle

import (
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Concatenable reports whether arrow-go's array.Concatenate takes columns
// of these fields: not a sparse union, at any depth. Batches that are not
// go as they come, one by one.
func Concatenable(fields []arrow.Field) bool {
	for _, f := range fields {
		switch t := f.Type.(type) {
		case *arrow.SparseUnionType:
			return false
		case arrow.NestedType:
			if !Concatenable(t.Fields()) {
				return false
			}
		}
	}
	return true
}

var _ memory.Allocator = (*Recycler)(nil)

// Recycler is a memory.Allocator that keeps freed buffers for reuse: a
// stream's batches all have about the same buffers, so after the first
// few no memory is allocated (or zeroed, or collected). Allocate does not
// zero. It keeps at most keep buffers and maxBytes bytes, dropping the
// oldest first (a buffer no request fits ages out). What it keeps goes
// with it: it lives as long as its stream and the batches read from it.
type Recycler struct {
	mu    sync.Mutex
	free  [][]byte
	bytes int
}

const (
	keep     = 256
	maxBytes = 1 << 30
)

func (p *Recycler) Allocate(size int) []byte {
	p.mu.Lock()
	best := -1
	for i, b := range p.free {
		if cap(b) >= size && cap(b) <= 2*size+4096 && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := p.free[best]
		p.free = append(p.free[:best], p.free[best+1:]...)
		p.bytes -= cap(b)
		p.mu.Unlock()
		return b[:size]
	}
	p.mu.Unlock()
	return make([]byte, size)
}

func (p *Recycler) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		return b[:size]
	}
	nb := p.Allocate(size)
	copy(nb, b)
	p.Free(b)
	return nb
}

func (p *Recycler) Free(b []byte) {
	if cap(b) == 0 || cap(b) > maxBytes {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, b[:0])
	p.bytes += cap(b)
	for len(p.free) > keep || p.bytes > maxBytes {
		p.bytes -= cap(p.free[0])
		p.free[0] = nil
		p.free = p.free[1:]
	}
}

// Kept is how many buffers, of how many bytes, p holds for reuse.
func (p *Recycler) Kept() (buffers, bytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free), p.bytes
}
