package flight

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// hostileWorker is a data plane that answers every DoGet with messages,
// whatever the ticket.
type hostileWorker struct {
	flight.BaseFlightServer
	messages []*flight.FlightData
	// stall: then it sends nothing more until the call ends.
	stall bool
}

func (w *hostileWorker) DoGet(_ *flight.Ticket, stream flight.FlightService_DoGetServer) error {
	for _, m := range w.messages {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	if w.stall {
		<-stream.Context().Done()
	}
	return nil
}

// serveHostile serves messages on a loopback port with gRPC's own codec.
func serveHostile(t *testing.T, messages []*flight.FlightData) string {
	return serveHostileWorker(t, &hostileWorker{messages: messages})
}

func serveHostileWorker(t *testing.T, w *hostileWorker) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	flight.RegisterFlightServiceServer(s, w)
	done := make(chan struct{})
	go func() { s.Serve(lis); close(done) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return lis.Addr().String()
}

// streamOf is the DoGet stream of recs as arrow-go's IPC writer encodes
// it with opts, one FlightData a message.
func streamOf(t *testing.T, schema *arrow.Schema, recs []arrow.RecordBatch, opts ...ipc.Option) []*flight.FlightData {
	t.Helper()
	var out []*flight.FlightData
	dw := &dataWriter{send: func(v any) error {
		m := v.(*dataMessage)
		out = append(out, &flight.FlightData{DataHeader: m.header, DataBody: bytes.Join(m.body, nil)})
		return nil
	}}
	w := ipc.NewWriterWithPayloadWriter(dw, append([]ipc.Option{ipc.WithSchema(schema)}, opts...)...)
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHandoffHostileSender: whatever a worker sends, the fetch fails with
// InvalidArgument and leaves no file (shmDir checks for leftovers), or
// writes a file that reads back.
func TestHandoffHostileSender(t *testing.T) {
	schema := arrow.NewSchema(handoffSchema.Fields()[:2], nil)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema,
		strings.NewReader(`[{"id": 1, "name": "abc"}, {"id": 2, "name": "def"}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	good := streamOf(t, schema, []arrow.RecordBatch{rec})
	dictRec, _, err := array.RecordFromJSON(memory.DefaultAllocator, handoffSchema, strings.NewReader(handoffBatches[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer dictRec.Release()
	dict := streamOf(t, handoffSchema, []arrow.RecordBatch{dictRec})

	// with returns a copy of the good stream with message i changed.
	with := func(i int, edit func(fd *flight.FlightData)) []*flight.FlightData {
		out := make([]*flight.FlightData, len(good))
		for j, m := range good {
			out[j] = proto.Clone(m).(*flight.FlightData)
		}
		edit(out[i])
		return out
	}
	// offsets rewrites the name column's offsets [0, 3, 6] in the batch.
	offsets := func(o1, o2 int32) []*flight.FlightData {
		return with(1, func(fd *flight.FlightData) {
			want := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(make([]byte, 4), 3), 6)
			at := bytes.Index(fd.DataBody, want)
			if at < 0 {
				t.Fatal("no offsets [0, 3, 6] in the batch's body")
			}
			binary.LittleEndian.PutUint32(fd.DataBody[at+4:], uint32(o1))
			binary.LittleEndian.PutUint32(fd.DataBody[at+8:], uint32(o2))
		})
	}
	for _, tc := range []struct {
		name     string
		messages []*flight.FlightData
		msg      string // "" if the stream is valid
	}{
		{"valid", good, ""},
		{"valid with app metadata", append([]*flight.FlightData{{AppMetadata: []byte("hi")}}, good...), ""},
		{"dictionary", dict, ""},
		{"nothing", nil, "ended before its schema"},
		{"batch first", good[1:], "does not start with a schema"},
		{"garbage header", with(0, func(fd *flight.FlightData) { fd.DataHeader = []byte("not a flatbuffer") }), "does not start with a schema"},
		{"body cut short", with(1, func(fd *flight.FlightData) { fd.DataBody = fd.DataBody[:8] }), "message 1"},
		{"body not padded", with(1, func(fd *flight.FlightData) { fd.DataBody = fd.DataBody[:len(fd.DataBody)-1] }), "not a multiple of 8"},
		{"body longer than its header says", with(1, func(fd *flight.FlightData) { fd.DataBody = append(fd.DataBody, make([]byte, 8)...) }), "body of"},
		{"schema twice", append(append([]*flight.FlightData{}, good[0]), good...), "message 1"},
		{"offsets decreasing", offsets(4, 3), "below the one before"},
		{"offsets past the data", offsets(3, 1<<20), "data buffer"},
		{"negative offset", offsets(-1, 6), "below the one before"},
		{"no dictionary", append([]*flight.FlightData{dict[0]}, dict[2:]...), "before the dictionaries"},
		{"dictionary twice", append(append([]*flight.FlightData{}, dict[:2]...), dict[1:]...), "sent again"},
		{"compressed", streamOf(t, schema, []arrow.RecordBatch{rec}, ipc.WithLZ4()), "compressed batches are not received"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveHostile(t, tc.messages)
			dst := filepath.Join(shmDir(t), "in.arrow")
			err := FetchIntermediate(context.Background(), addr, []byte("any"), dst, FetchOptions{})
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				readIntermediate(t, dst)
				return
			}
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want InvalidArgument containing %q", err, tc.msg)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Fatalf("a refused stream left %s: %v", dst, err)
			}
		})
	}
}

// TestHandoffDoGetStalled: a holder that stops sending midway (or before
// its first message) fails the fetch as Unavailable once stallTimeout
// passes, and leaves nothing.
func TestHandoffDoGetStalled(t *testing.T) {
	defer func(d time.Duration) { stallTimeout = d }(stallTimeout)
	stallTimeout = 200 * time.Millisecond
	schema := arrow.NewSchema(handoffSchema.Fields()[:2], nil)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(`[{"id": 1, "name": "abc"}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	good := streamOf(t, schema, []arrow.RecordBatch{rec})
	for name, messages := range map[string][]*flight.FlightData{"midway": good[:1], "before its first message": nil} {
		t.Run(name, func(t *testing.T) {
			addr := serveHostileWorker(t, &hostileWorker{messages: messages, stall: true})
			dst := filepath.Join(shmDir(t), "in.arrow")
			start := time.Now()
			err := FetchIntermediate(context.Background(), addr, []byte("any"), dst, FetchOptions{})
			if !errdefs.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "sent nothing of the intermediate for 200ms") {
				t.Fatalf("got %v, want Unavailable: sent nothing", err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("gave up after %s", took)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Fatalf("a stalled fetch left %s: %v", dst, err)
			}
		})
	}
}

// FuzzReceivedData: the decoder of FlightData in pieces agrees with the
// one of FlightData whole, however the message is cut.
func FuzzReceivedData(f *testing.F) {
	for _, fd := range []*flight.FlightData{
		{DataHeader: []byte("head"), DataBody: make([]byte, 300)},
		{AppMetadata: []byte("meta"), DataHeader: []byte{1, 2}, DataBody: []byte{0}},
		{FlightDescriptor: &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte("x")}},
	} {
		b, err := proto.Marshal(fd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(3))
	}
	f.Add([]byte{0xc2, 0x3e, 0x05, 1, 2}, uint8(0))
	f.Add([]byte{0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		var want flight.FlightData
		werr := unmarshalFlightData(append([]byte(nil), b...), &want)
		var data mem.BufferSlice
		for rest := b; len(rest) > 0; {
			n := min(len(rest), int(step)+1)
			data = append(data, mem.SliceBuffer(rest[:n]))
			rest = rest[n:]
		}
		var got receivedData
		gerr := got.unmarshal(data)
		defer got.free()
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("whole: %v, in pieces: %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		if !bytes.Equal(got.header, want.DataHeader) || !bytes.Equal(bytes.Join(got.body, nil), want.DataBody) ||
			got.bodyLen != int64(len(want.DataBody)) {
			t.Fatalf("in pieces: header %x, body %x (%d bytes); whole: %x, %x", got.header, bytes.Join(got.body, nil), got.bodyLen,
				want.DataHeader, want.DataBody)
		}
	})
}

// TestHandoffStandardClient: what a worker sends of a file read in place
// (its messages as they lie in the file) is a standard DoGet stream that
// arrow-go's Flight reader reads batch for batch.
func TestHandoffStandardClient(t *testing.T) {
	key := []byte("fleet key")
	a := serveHandoffWorker(t, &joinedWorker{name: "a", lease: "la", key: key})
	schema := arrow.NewSchema(handoffSchema.Fields()[:2], nil)
	_, want, tkt := holdParent(t, a, key, schema, []string{
		`[{"id": 1, "name": "Ada"}, {"id": null, "name": null}, {"id": 3, "name": ""}]`,
		`[{"id": 4, "name": "città ✓"}]`,
	})
	c, err := Dial(a.addr, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stream, err := c.fc.DoGet(context.Background(), &flight.Ticket{Ticket: tkt})
	if err != nil {
		t.Fatal(err)
	}
	r, err := flight.NewRecordReader(stream)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var got int
	for ; r.Next(); got++ {
		if got >= len(want) || !array.RecordEqual(r.RecordBatch(), want[got]) {
			t.Fatalf("batch %d: %v", got, r.RecordBatch())
		}
	}
	if err := r.Err(); err != nil || got != len(want) {
		t.Fatalf("%d batches, %v", got, err)
	}
}
