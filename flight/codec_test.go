package flight

import (
	"errors"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// sentMessages is a DoGet stream's wire: the encoded messages, not yet
// freed, as gRPC holds them until written.
type sentMessages struct {
	codec codec
	bufs  []mem.BufferSlice
	next  int
}

func (s *sentMessages) send(m any) error {
	b, err := s.codec.Marshal(m)
	if err != nil {
		return err
	}
	s.bufs = append(s.bufs, b)
	return nil
}

// Recv decodes the next message as the client's protobuf would.
func (s *sentMessages) Recv() (*flight.FlightData, error) {
	if s.next == len(s.bufs) {
		return nil, io.EOF
	}
	var fd flight.FlightData
	// Through a copy: the codec's own Unmarshal is gRPC's.
	if err := s.codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(s.bufs[s.next].Materialize())}, &fd); err != nil {
		return nil, err
	}
	s.next++
	return &fd, nil
}

func (s *sentMessages) free() {
	for _, b := range s.bufs {
		b.Free()
	}
}

// poisonAllocator overwrites what it frees, so a buffer read after its
// batch was released shows it.
type poisonAllocator struct{ memory.GoAllocator }

func (a *poisonAllocator) Free(b []byte) {
	for i := range b {
		b[i] = 0xa5
	}
}

// TestDataWriter: batches written by dataWriter decode as standard
// FlightData into the same batches, and each batch stays allocated until
// the transport frees the last buffer of its message.
func TestDataWriter(t *testing.T) {
	t.Parallel()
	alloc := memory.NewCheckedAllocator(&poisonAllocator{})
	defer alloc.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "n", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "f", Type: arrow.FixedWidthTypes.Boolean},
	}, nil)
	build := func(mem memory.Allocator, rows int) arrow.RecordBatch {
		b := array.NewRecordBuilder(mem, schema)
		defer b.Release()
		for i := range rows {
			b.Field(0).(*array.Int64Builder).Append(int64(i) * 7)
			if i%5 == 0 {
				b.Field(1).AppendNull()
			} else {
				b.Field(1).(*array.StringBuilder).Append(string(rune('a' + i%26)))
			}
			b.Field(2).(*array.BooleanBuilder).Append(i%3 == 0)
		}
		return b.NewRecordBatch()
	}
	// Large columns go by reference, small ones (a few rows) are copied;
	// a slice starts mid-buffer, so the IPC writer makes buffers of its
	// own for it.
	var written, want []arrow.RecordBatch
	for _, rows := range []int{100_000, 3, 20_000} {
		written = append(written, build(alloc, rows))
		want = append(want, build(memory.DefaultAllocator, rows))
	}
	written = append(written, written[0].NewSlice(10, 70_000))
	want = append(want, want[0].NewSlice(10, 70_000))

	sent := &sentMessages{codec: newCodec()}
	w, write := newDataWriter(sent.send, schema)
	for _, b := range written {
		if err := write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, b := range written {
		b.Release()
	}
	if alloc.CurrentAlloc() == 0 {
		t.Errorf("batches were freed while their messages were still unsent")
	}
	r, err := flight.NewRecordReader(sent)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for r.Next() {
		if i >= len(want) || !array.RecordEqual(r.RecordBatch(), want[i]) {
			t.Errorf("batch %d differs from the one written", i)
		}
		i++
	}
	if err := r.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	r.Release()
	if i != len(want) {
		t.Errorf("read %d batches, want %d", i, len(want))
	}
	sent.free()
}

// TestCodecProto: other messages are gRPC's protobuf.
func TestCodecProto(t *testing.T) {
	t.Parallel()
	c := newCodec()
	b, err := c.Marshal(&flight.Ticket{Ticket: []byte("t")})
	if err != nil {
		t.Fatal(err)
	}
	var got flight.Ticket
	if err := c.Unmarshal(b, &got); err != nil || string(got.GetTicket()) != "t" {
		t.Errorf("ticket %q, %v", got.GetTicket(), err)
	}
	b.Free()
}

// FuzzUnmarshalFlightData: the hand decoder of FlightData agrees with
// protobuf on every input: both fail, or both give equal messages.
func FuzzUnmarshalFlightData(f *testing.F) {
	for _, fd := range []*flight.FlightData{
		{},
		{DataHeader: []byte("head"), DataBody: make([]byte, 300)},
		{FlightDescriptor: &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte(`{"upload":{}}`)}, DataHeader: []byte{1}},
		{AppMetadata: []byte("meta"), DataBody: []byte{0}},
		{FlightDescriptor: &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"a", "b"}}},
	} {
		b, err := proto.Marshal(fd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x08, 0x01})                   // a varint field FlightData lacks
	f.Add([]byte{0xc2, 0x3e, 0x05, 1, 2})       // a body longer than the message
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00, 0x0a}) // a descriptor twice, truncated
	f.Fuzz(func(t *testing.T, b []byte) {
		var want, got flight.FlightData
		werr := proto.Unmarshal(b, &want)
		gerr := unmarshalFlightData(append([]byte(nil), b...), &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("protobuf: %v, hand decoder: %v", werr, gerr)
		}
		if werr == nil && !proto.Equal(&want, &got) {
			t.Fatalf("decoded %v, protobuf %v", &got, &want)
		}
	})
}
