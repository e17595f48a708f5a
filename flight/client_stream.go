package flight

import (
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/recycle"
	"google.golang.org/grpc"
)

// messageStream is a DoGet stream as the IPC messages it carries. A
// batch's body is one copy of the message out of gRPC's buffers (Arrow
// needs it contiguous), into a buffer of the stream's pool, which gets it
// back when the last batch over it is released: the copies land in memory
// earlier batches used instead of fresh pages the Go heap has to fault
// in, zero and later collect, which cost the `lakehouse query` process
// more than the copy itself (a third of its CPU for 320 MB). The first
// message is the one query already received (it tells a refusal from a
// stream).
type messageStream struct {
	stream  grpc.ClientStream
	pool    recycle.Recycler
	checker arrowipc.Checker
	d       receivedData
	pending bool // d holds the first message, not yet returned
	msg     *ipc.Message
	refs    atomic.Int64
}

// newMessageStream receives the stream's first message.
func newMessageStream(stream grpc.ClientStream) (*messageStream, error) {
	m := &messageStream{stream: stream, pending: true, checker: arrowipc.Checker{Name: "the query's stream", Dictionaries: true, AnyType: true}}
	m.refs.Add(1)
	if err := stream.RecvMsg(&m.d); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *messageStream) Message() (msg *ipc.Message, err error) {
	if m.msg != nil {
		m.msg.Release()
		m.msg = nil
	}
	// A message with no IPC header (app metadata alone) carries no rows.
	for !m.pending || len(m.d.header) == 0 {
		if err := m.stream.RecvMsg(&m.d); err != nil {
			m.d.free()
			return nil, err
		}
		m.pending = true
	}
	m.pending = false
	defer m.d.free()
	defer func() {
		// A header that is not an IPC message panics in the flatbuffers
		// code: the server (or a worker) sent garbage.
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("arrow/ipc: invalid message metadata: %v", r)
		}
	}()
	meta := memory.NewBufferBytes(append([]byte(nil), m.d.header...))
	var body *memory.Buffer
	var b []byte
	if m.d.bodyLen == 0 {
		body = memory.NewBufferBytes(nil)
	} else {
		b = m.pool.Allocate(int(m.d.bodyLen))
		off := 0
		for _, p := range m.d.body {
			off += copy(b[off:], p)
		}
		body = memory.NewBufferWithAllocator(b, &m.pool)
		defer body.Release() // the message holds it now
	}
	// What the server sent is checked before arrow-go trusts its counts
	// and sizes.
	if _, err := m.checker.Check(meta.Bytes(), b, m.d.bodyLen); err != nil {
		return nil, err
	}
	m.msg = ipc.NewMessage(meta, body)
	return m.msg, nil
}

func (m *messageStream) Retain() { m.refs.Add(1) }

func (m *messageStream) Release() {
	if m.refs.Add(-1) == 0 {
		if m.msg != nil {
			m.msg.Release()
			m.msg = nil
		}
		m.d.free()
	}
}
