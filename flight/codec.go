package flight

import (
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// codec is the gRPC codec of the server and the client: protobuf, as
// gRPC's own, except for record batches. Those DoGet sends (dataMessage)
// go to the transport as their Arrow buffers are, instead of being copied
// into a serialized IPC body and then into a marshalled FlightData; those
// received (FlightData) are decoded with one copy instead of two. The
// bytes on the wire are standard FlightData messages, so every Flight
// client (pyarrow, Flight SQL drivers) reads and writes them as before.
type codec struct {
	proto encoding.CodecV2
}

var _ encoding.CodecV2 = codec{}

func newCodec() codec {
	// grpc registers its protobuf codec under "proto" when it loads.
	return codec{proto: encoding.GetCodecV2("proto")}
}

func (codec) Name() string { return "proto" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*dataMessage); ok {
		return m.marshal(), nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal decodes FlightData (record batches of DoGet and DoPut) by hand
// into one copy of the message, its header and body pointing into it
// (protobuf would copy each field out again); anything else is protobuf.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if d, ok := v.(*receivedData); ok {
		return d.unmarshal(data)
	}
	if fd, ok := v.(*flight.FlightData); ok {
		return unmarshalFlightData(data.Materialize(), fd)
	}
	return c.proto.Unmarshal(data, v)
}

// unmarshalFlightData decodes b into fd, whose byte fields then point
// into b. A message with fields it does not expect (another version's, or
// repeated descriptors) goes to protobuf whole.
func unmarshalFlightData(b []byte, fd *flight.FlightData) error {
	fd.Reset()
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 || typ != protowire.BytesType {
			return proto.Unmarshal(b, fd)
		}
		v, m := protowire.ConsumeBytes(rest[n:])
		if m < 0 {
			return proto.Unmarshal(b, fd)
		}
		rest = rest[n+m:]
		switch num {
		case fieldDescriptor:
			if fd.FlightDescriptor != nil {
				return proto.Unmarshal(b, fd)
			}
			fd.FlightDescriptor = new(flight.FlightDescriptor)
			if err := proto.Unmarshal(v, fd.FlightDescriptor); err != nil {
				return err
			}
		case fieldDataHeader:
			fd.DataHeader = v
		case fieldAppMetadata:
			fd.AppMetadata = v
		case fieldDataBody:
			fd.DataBody = v
		default:
			return proto.Unmarshal(b, fd)
		}
	}
	return nil
}

// receivedData is a FlightData message as FetchIntermediate receives it:
// its header copied out, its body left in the transport's buffers (the
// pieces gRPC read it into), referenced until free, so that the body is
// written into the destination file straight from them. App metadata and
// descriptors are dropped. Its slices are reused from message to message.
type receivedData struct {
	header  []byte
	body    [][]byte
	bodyLen int64
	bufs    mem.BufferSlice
	pieces  [][]byte
}

// free lets go of the message's buffers.
func (d *receivedData) free() {
	if d.bufs != nil {
		d.bufs.Free()
		d.bufs = nil
	}
	clear(d.body)
	clear(d.pieces)
	d.header, d.body, d.pieces, d.bodyLen = d.header[:0], d.body[:0], d.pieces[:0], 0
}

// unmarshal decodes data as FlightData without copying its body. A
// message with fields other than data_header, app_metadata and data_body
// goes to unmarshalFlightData whole.
func (d *receivedData) unmarshal(data mem.BufferSlice) error {
	d.free()
	for _, b := range data {
		if p := b.ReadOnlyData(); len(p) > 0 {
			d.pieces = append(d.pieces, p)
		}
	}
	c := pieceCursor{pieces: d.pieces, left: data.Len()}
	for c.left > 0 {
		tag, ok := c.varint()
		if !ok || protowire.Type(tag&7) != protowire.BytesType {
			return d.unmarshalCopy(data)
		}
		n, ok := c.varint()
		if !ok || n > uint64(c.left) {
			return d.unmarshalCopy(data)
		}
		switch tag >> 3 {
		case fieldDataHeader:
			d.header = c.copy(d.header[:0], int(n))
		case fieldAppMetadata:
			c.skip(int(n))
		case fieldDataBody:
			d.body = c.views(d.body[:0], int(n))
			d.bodyLen = int64(n)
		default:
			return d.unmarshalCopy(data)
		}
	}
	data.Ref()
	d.bufs = data
	return nil
}

// unmarshalCopy decodes data as FlightData into one copy of it.
func (d *receivedData) unmarshalCopy(data mem.BufferSlice) error {
	d.free()
	var fd flight.FlightData
	if err := unmarshalFlightData(data.Materialize(), &fd); err != nil {
		return err
	}
	d.header = append(d.header, fd.DataHeader...)
	if len(fd.DataBody) > 0 {
		d.body = append(d.body, fd.DataBody)
		d.bodyLen = int64(len(fd.DataBody))
	}
	return nil
}

// pieceCursor reads a message that lies in pieces.
type pieceCursor struct {
	pieces [][]byte
	left   int
}

// varint reads a protobuf varint, as protowire.ConsumeVarint does.
func (c *pieceCursor) varint() (uint64, bool) {
	var v uint64
	for i := range 10 {
		if c.left == 0 {
			return 0, false
		}
		b := c.pieces[0][0]
		c.advance(1)
		if i == 9 && b > 1 {
			return 0, false
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v, true
		}
	}
	return 0, false
}

// copy appends the next n bytes to dst.
func (c *pieceCursor) copy(dst []byte, n int) []byte {
	for n > 0 {
		k := min(n, len(c.pieces[0]))
		dst = append(dst, c.pieces[0][:k]...)
		c.advance(k)
		n -= k
	}
	return dst
}

// views appends the next n bytes to dst as slices of the pieces.
func (c *pieceCursor) views(dst [][]byte, n int) [][]byte {
	for n > 0 {
		k := min(n, len(c.pieces[0]))
		dst = append(dst, c.pieces[0][:k])
		c.advance(k)
		n -= k
	}
	return dst
}

// skip skips the next n bytes.
func (c *pieceCursor) skip(n int) {
	for n > 0 {
		k := min(n, len(c.pieces[0]))
		c.advance(k)
		n -= k
	}
}

// advance skips n bytes of the first piece (at most all of it).
func (c *pieceCursor) advance(n int) {
	c.left -= n
	if c.pieces[0] = c.pieces[0][n:]; len(c.pieces[0]) == 0 {
		c.pieces = c.pieces[1:]
	}
}

// FlightData's field numbers (Flight.proto).
const (
	fieldDescriptor  = 1
	fieldDataHeader  = 2
	fieldAppMetadata = 3
	fieldDataBody    = 1000
)

// copyBelow is the size under which a piece of a body is copied next to
// the message's header rather than handed to the transport by reference:
// gRPC does not count references of buffers that small, and a few bytes
// cost less to copy than to track.
const copyBelow = 64 << 10

// dataMessage is one FlightData message of a DoGet stream, not yet
// encoded: an IPC message header and the pieces of its body, which point
// into Arrow buffers that release frees once gRPC has written them.
type dataMessage struct {
	header  []byte
	body    [][]byte
	bodyLen int
	release func()
}

// Write adds p to the body without copying it (the io.Writer that
// ipc.Payload.SerializeBody writes to).
func (m *dataMessage) Write(p []byte) (int, error) {
	m.body = append(m.body, p)
	m.bodyLen += len(p)
	return len(p), nil
}

// marshal encodes m as FlightData: fields data_header and data_body, the
// body's large pieces by reference. release runs once gRPC frees the last
// of them (at once if none).
func (m *dataMessage) marshal() mem.BufferSlice {
	head := make([]byte, 0, 32+len(m.header))
	head = protowire.AppendTag(head, fieldDataHeader, protowire.BytesType)
	head = protowire.AppendBytes(head, m.header)
	if m.bodyLen == 0 {
		m.done()
		return mem.BufferSlice{mem.SliceBuffer(head)}
	}
	head = protowire.AppendTag(head, fieldDataBody, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(m.bodyLen))
	out := make(mem.BufferSlice, 0, len(m.body)+1)
	refs := &refPool{release: m.release}
	// One reference for marshal itself, so release cannot run before
	// every piece is handed out.
	refs.n.Store(1)
	small := head
	for _, p := range m.body {
		if len(p) < copyBelow {
			small = append(small, p...)
			continue
		}
		if len(small) > 0 {
			out = append(out, mem.SliceBuffer(small))
			small = nil
		}
		refs.n.Add(1)
		out = append(out, mem.NewBuffer(&p, refs))
	}
	if len(small) > 0 {
		out = append(out, mem.SliceBuffer(small))
	}
	refs.Put(nil)
	m.release = nil
	return out
}

func (m *dataMessage) done() {
	if m.release != nil {
		m.release()
		m.release = nil
	}
}

// refPool is the mem.BufferPool of a message's pieces: gRPC "returns"
// each piece to it when written, and the last return calls release.
type refPool struct {
	n       atomic.Int32
	release func()
}

func (p *refPool) Get(int) *[]byte {
	panic("flight: refPool lends no buffers")
}

func (p *refPool) Put(*[]byte) {
	if p.n.Add(-1) == 0 && p.release != nil {
		p.release()
	}
}

// dataWriter writes record batches to a DoGet stream as dataMessages:
// an ipc.PayloadWriter whose payloads keep the batch they came from alive
// until gRPC has written them.
type dataWriter struct {
	send func(any) error
	// cur is the batch being written: each payload of it holds a
	// reference until sent.
	cur arrow.RecordBatch
}

func (w *dataWriter) Start() error { return nil }
func (w *dataWriter) Close() error { return nil }

func (w *dataWriter) WritePayload(p ipc.Payload) error {
	meta := p.Meta()
	m := &dataMessage{}
	if meta != nil {
		// The header is small; its buffer goes back to the writer now.
		m.header = append([]byte(nil), meta.Bytes()...)
		meta.Release()
	}
	if w.cur != nil {
		b := w.cur
		b.Retain()
		m.release = b.Release
	}
	if err := p.SerializeBody(m); err != nil {
		m.done()
		return err
	}
	// The codec runs inside send; if send fails before it does, the
	// batch is released here.
	err := w.send(m)
	m.done()
	return err
}

// newDataWriter returns an IPC stream writer of schema over send (a
// stream's SendMsg) and a function writing a batch through it.
func newDataWriter(send func(any) error, schema *arrow.Schema) (*ipc.Writer, func(arrow.RecordBatch) error) {
	dw := &dataWriter{send: send}
	w := ipc.NewWriterWithPayloadWriter(dw, ipc.WithSchema(schema))
	return w, func(b arrow.RecordBatch) error {
		dw.cur = b
		defer func() { dw.cur = nil }()
		return w.Write(b)
	}
}

// WriteChunks sends the record batches of chunks on a DoGet stream as this
// package's DoGet sends query results: their buffers go to gRPC without
// being copied (the codec's dataMessage), where flight.NewRecordWriter
// copies each batch twice. It stops at the first chunk with an error
// (returned), at the end of chunks, or when the call ends; it releases every
// batch, those left in chunks too.
func WriteChunks(stream flight.FlightService_DoGetServer, schema *arrow.Schema, chunks <-chan flight.StreamChunk) error {
	defer func() {
		for c := range chunks {
			if c.Data != nil {
				c.Data.Release()
			}
		}
	}()
	w, write := newDataWriter(stream.SendMsg, schema)
	defer w.Close()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c, ok := <-chunks:
			if !ok {
				return nil
			}
			if c.Err != nil {
				if c.Data != nil {
					c.Data.Release()
				}
				return c.Err
			}
			if c.Data == nil {
				continue
			}
			err := write(c.Data)
			c.Data.Release()
			if err != nil {
				return err
			}
		}
	}
}
