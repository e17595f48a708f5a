package recycle

import "testing"

// TestRecycler: buffers come back for requests they fit, empty ones are
// not kept, and the pool drops its oldest buffers past its bounds.
func TestRecycler(t *testing.T) {
	p := &Recycler{}
	b := p.Allocate(1000)
	p.Free(b)
	if c := p.Allocate(900); &c[0] != &b[0] {
		t.Error("a freed buffer was not reused for a request it fits")
	}
	p.Free(make([]byte, 0))
	if len(p.free) != 0 {
		t.Errorf("an empty buffer was kept: %d", len(p.free))
	}
	for range keep + 10 {
		p.Free(make([]byte, 10))
	}
	if len(p.free) != keep || p.bytes != 10*keep {
		t.Errorf("kept %d buffers, %d bytes", len(p.free), p.bytes)
	}
}
