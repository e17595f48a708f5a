package flight

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
)

// recvPool lends the buffers a client reads messages into. It is gRPC's
// default pool less the zeroing of every buffer lent: gRPC reads a whole
// HTTP/2 frame into each (io.ReadFull), so nothing of what a buffer held
// before is ever read, and a handoff would otherwise clear each of its
// bytes once more before receiving it.
var recvPool = &dirtyPool{}

// dirtyPool keeps buffers by capacity, powers of two from 256 bytes to
// 4 MiB; others are allocated and left to the GC.
type dirtyPool struct {
	tiers [dirtyMaxShift - dirtyMinShift + 1]sync.Pool
}

const (
	dirtyMinShift = 8
	dirtyMaxShift = 22
)

var _ mem.BufferPool = (*dirtyPool)(nil)

func (p *dirtyPool) Get(size int) *[]byte {
	shift := max(bits.Len(uint(max(size, 1)-1)), dirtyMinShift)
	if shift > dirtyMaxShift {
		b := make([]byte, size)
		return &b
	}
	if b, ok := p.tiers[shift-dirtyMinShift].Get().(*[]byte); ok {
		*b = (*b)[:size]
		return b
	}
	b := make([]byte, size, 1<<shift)
	return &b
}

func (p *dirtyPool) Put(b *[]byte) {
	c := cap(*b)
	shift := bits.Len(uint(c)) - 1
	if c == 0 || c != 1<<shift || shift < dirtyMinShift || shift > dirtyMaxShift {
		return
	}
	p.tiers[shift-dirtyMinShift].Put(b)
}
