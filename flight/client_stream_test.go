package flight

import (
	"bytes"
	"io"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
	"google.golang.org/grpc"
)

// fakeStream answers RecvMsg with the messages given, then io.EOF.
type fakeStream struct {
	grpc.ClientStream
	msgs []receivedData
}

func (f *fakeStream) RecvMsg(m any) error {
	if len(f.msgs) == 0 {
		return io.EOF
	}
	d := m.(*receivedData)
	d.free()
	*d = f.msgs[0]
	f.msgs = f.msgs[1:]
	return nil
}

// received are msgs as a client receives them, each body in pieces of at
// most piece bytes (gRPC's frames hold a body in pieces).
func received(msgs []ipctest.Message, piece int) []receivedData {
	var out []receivedData
	for _, m := range msgs {
		d := receivedData{header: m.Header, bodyLen: int64(len(m.Body))}
		for body := m.Body; len(body) > 0; {
			k := min(len(body), piece)
			d.body = append(d.body, body[:k])
			body = body[k:]
		}
		out = append(out, d)
	}
	return out
}

// ipcMessages are the messages of an IPC stream of one batch of n rows
// (column a: 0..n-1), as received data.
func ipcMessages(t *testing.T, n int) []receivedData {
	t.Helper()
	b := array.NewInt64Builder(memory.DefaultAllocator)
	for i := range n {
		b.Append(int64(i))
	}
	col := b.NewArray()
	b.Release()
	defer col.Release()
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, int64(n))
	defer rec.Release()
	return received(ipctest.StreamMessages(t, rec), 1000)
}

func TestMessageStream(t *testing.T) {
	msgs := ipcMessages(t, 100000)
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	ms, err := newMessageStream(&fakeStream{msgs: slices.Clone(msgs)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewReaderFromMessageReader(ms)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Next() {
		t.Fatalf("no batch: %v", r.Err())
	}
	rec := r.RecordBatch()
	rec.Retain()
	if r.Next() {
		t.Error("a second batch")
	}
	if r.Err() != nil {
		t.Error(r.Err())
	}
	r.Release()
	// The batch outlives the reader, its body the pool's until released.
	a := rec.Column(0).(*array.Int64).Int64Values()
	for i, v := range a {
		if v != int64(i) {
			t.Fatalf("row %d: %d", i, v)
		}
	}
	if n, _ := ms.pool.Kept(); n != 0 {
		t.Errorf("%d bodies back in the pool while a batch holds its own", n)
	}
	rec.Release()
	if n, _ := ms.pool.Kept(); n != 1 {
		t.Errorf("%d bodies in the pool once the batch is released, want 1", n)
	}

	// Garbage where a message's header should be is an error, not a panic,
	// first message or later.
	for name, bad := range map[string][]receivedData{
		"schema":     {{header: []byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4}}},
		"batch":      {msgs[0], {header: []byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4}, body: [][]byte{make([]byte, 64)}, bodyLen: 64}},
		"short body": {msgs[0], {header: msgs[1].header, body: [][]byte{make([]byte, 64)}, bodyLen: 64}},
	} {
		ms, err := newMessageStream(&fakeStream{msgs: bad})
		if err != nil {
			t.Fatal(err)
		}
		r, err := ipc.NewReaderFromMessageReader(ms)
		if err != nil {
			continue
		}
		if r.Next() || r.Err() == nil {
			t.Errorf("%s: garbage read as a batch (err %v)", name, r.Err())
		}
		r.Release()
	}
}

// FuzzMessageStream: whatever a server sends as a query's messages, the
// reader gives batches or an error, never a panic.
func FuzzMessageStream(f *testing.F) {
	msgs := ipcMessages(&testing.T{}, 100)
	f.Add(msgs[0].header, msgs[1].header, bytes.Join(msgs[1].body, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f}, []byte{}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, schema, header, body []byte) {
		d := receivedData{header: header, bodyLen: int64(len(body))}
		if len(body) > 0 {
			d.body = [][]byte{body}
		}
		ms, err := newMessageStream(&fakeStream{msgs: []receivedData{{header: schema}, d}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := ipc.NewReaderFromMessageReader(ms)
		if err != nil {
			return
		}
		defer r.Release()
		for r.Next() {
			rec := r.RecordBatch()
			for _, c := range rec.Columns() {
				_ = c.String()
			}
		}
	})
}

// A query's stream may hold columns a file import does not read (a
// union, run-end encoded): the client reads them, their batches checked
// for bounds only.
func TestMessageStreamUnion(t *testing.T) {
	mem := memory.DefaultAllocator
	ib := array.NewInt8Builder(mem)
	ib.AppendValues([]int8{0, 1, 0}, nil)
	ids := ib.NewArray()
	defer ids.Release()
	xb := array.NewInt64Builder(mem)
	xb.AppendValues([]int64{1, 2, 3}, nil)
	xs := xb.NewArray()
	defer xs.Release()
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"a", "b", "c"}, nil)
	ss := sb.NewArray()
	defer ss.Release()
	u, err := array.NewSparseUnionFromArrays(ids, []arrow.Array{xs, ss})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Release()
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "u", Type: u.DataType(), Nullable: true}}, nil), []arrow.Array{u}, 3)
	defer rec.Release()
	ms, err := newMessageStream(&fakeStream{msgs: received(ipctest.StreamMessages(t, rec), 1<<30)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewReaderFromMessageReader(ms)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatalf("no batch: %v", r.Err())
	}
	if s := r.RecordBatch().Column(0).String(); s != `[{0=1} {1="b"} {0=3}]` && s != "[{0=1} {1=b} {0=3}]" {
		t.Errorf("union read as %s", s)
	}
}
