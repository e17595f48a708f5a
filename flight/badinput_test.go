package flight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// endlessQueries answer every query with batches of 64Ki rows until the
// reader is closed; open counts the queries not closed yet.
type endlessQueries struct{ open atomic.Int64 }

func (q *endlessQueries) Run(ctx context.Context, _ QueryCommand) (array.RecordReader, func() error, error) {
	q.open.Add(1)
	r := &endlessReader{ctx: ctx, sc: arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)}
	var closed atomic.Bool
	return r, func() error {
		if closed.CompareAndSwap(false, true) {
			r.release()
			q.open.Add(-1)
		}
		return nil
	}, nil
}

func (q *endlessQueries) Explain(context.Context, QueryCommand) (*ExplainResult, error) {
	return &ExplainResult{Plan: json.RawMessage("{}")}, nil
}

type endlessReader struct {
	ctx context.Context
	sc  *arrow.Schema
	rec arrow.RecordBatch
}

func (r *endlessReader) Retain()                        {}
func (r *endlessReader) Release()                       {}
func (r *endlessReader) Schema() *arrow.Schema          { return r.sc }
func (r *endlessReader) RecordBatch() arrow.RecordBatch { return r.rec }
func (r *endlessReader) Record() arrow.RecordBatch      { return r.rec }
func (r *endlessReader) Err() error                     { return r.ctx.Err() }
func (r *endlessReader) release() {
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
}
func (r *endlessReader) Next() bool {
	r.release()
	if r.ctx.Err() != nil {
		return false
	}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	for i := range 64 << 10 {
		b.Append(int64(i))
	}
	col := b.NewArray()
	defer col.Release()
	r.rec = array.NewRecordBatch(r.sc, []arrow.Array{col}, int64(col.Len()))
	return true
}

// catalogState is what a bad request must leave unchanged.
func catalogState(t testing.TB, svc catalog.Service) string {
	t.Helper()
	ctx := context.Background()
	bs, err := svc.ListBranches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, br := range bs {
		fmt.Fprintf(&b, "%s=%s\n", br.Name, br.Head)
	}
	tags, err := svc.ListTags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range tags {
		fmt.Fprintf(&b, "tag %s=%s\n", tg.Name, tg.Commit)
	}
	return b.String()
}

// settleGoroutines waits until no more goroutines run than before.
func settleGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for n > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > before {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("goroutines: %d before, %d after\n%s", before, n, buf)
	}
}

// wireServer starts a server whose queries never end, with a table
// sales.t on tester.dev, and returns it with the goroutine count once a
// call went through.
func wireServer(t *testing.T) (*testServer, *endlessQueries, int) {
	t.Helper()
	q := &endlessQueries{}
	ts := startTestServer(t, Options{Queries: q})
	f := writeFile(t, filepath.Join(t.TempDir(), "a.csv"), "id,name\n1,x\n2,y\n")
	if _, err := ts.client.ImportTable(context.Background(), catalog.ImportRequest{Branch: "tester.dev",
		Table: catalog.TableIdent{Namespace: "sales", Name: "t"}, Sources: []string{f}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	return ts, q, runtime.NumGoroutine()
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Errorf("%s: got %v %q, want %v containing %q", what, st.Code(), st.Message(), code, msg)
	}
}

// doAction runs a raw action and returns the error of its stream.
func doAction(fc flight.FlightServiceClient, typ string, body []byte) error {
	stream, err := fc.DoAction(context.Background(), &flight.Action{Type: typ, Body: body})
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func TestBadActionBodies(t *testing.T) {
	ts, _, before := wireServer(t)
	state := catalogState(t, ts.svc)
	bodies := map[string]string{
		"truncated":         `{"name": "tester.x"`,
		"array":             `[]`,
		"string":            `"tester.x"`,
		"wrong type":        `{"name": 5, "from": ["main"], "branch": {}, "sources": "x", "uploads": 1, "sql": 2}`,
		"two objects":       `{"name": "tester.x", "from": "main"} {}`,
		"binary":            "\x00\xff\xfe{",
		"invalid utf-8 key": "{\"\xff\": 1}",
	}
	for _, typ := range []string{ActionCreateBranch, ActionDeleteBranch, ActionRenameBranch, ActionCreateTag,
		ActionCreateNamespace, ActionDeleteTable, ActionImportTable, ActionCheckImport, ActionCommitTables, ActionMerge, ActionDiff,
		ActionDiscardUploads, ActionExplainQuery} {
		for name, body := range bodies {
			err := doAction(ts.client.fc, typ, []byte(body))
			if name == "invalid utf-8 key" && err == nil {
				continue // Go's decoder takes it; the body is then merely empty
			}
			wantCode(t, typ+" "+name, err, codes.InvalidArgument, "")
		}
	}
	// Bodies that decode but name nothing valid.
	for typ, body := range map[string]string{
		ActionCreateBranch:  `{"name": "../etc", "from": "main"}`,
		ActionImportTable:   `{"branch": "tester.dev", "namespace": "sales", "table": "t", "sources": ["/etc/passwd"]}`,
		ActionCommitTables:  `{"branch": "tester.dev", "base": "nope", "tables": {"sales.t": null}}`,
		ActionMerge:         `{"source": "nope", "into": "main", "mode": "sideways"}`,
		ActionDeleteTable:   `{"branch": "tester.dev", "namespace": "", "table": ""}`,
		ActionCreateTag:     `{"name": "", "from": ""}`,
		ActionRenameBranch:  `{"from": "main", "to": "main"}`,
		ActionDeleteBranch:  `{}`,
		ActionTableHistory:  `{"ref": "@@@", "namespace": "sales", "table": "t"}`,
		ActionListNamespace: `{"ref": "no such ref"}`,
	} {
		if err := doAction(ts.client.fc, typ, []byte(body)); err == nil {
			t.Errorf("%s %s: no error", typ, body)
		}
	}
	if got := catalogState(t, ts.svc); got != state {
		t.Errorf("the catalog changed:\n%s\nwas\n%s", got, state)
	}
	settleGoroutines(t, before)
}

// ActionListNamespace is ListNamespaces, short for the table above.
const ActionListNamespace = ActionListNamespaces

func TestUnknownActionTypes(t *testing.T) {
	ts, _, before := wireServer(t)
	for typ, msg := range map[string]string{
		"":                          "unknown action type",
		"ListBranches":              "unknown action type",
		"lakehouse.v0.ListBranches": "protocol version",
		"lakehouse.v1.Nope":         "the server knows: ",
		"lakehouse.v1.":             "the server knows: ",
		strings.Repeat("x", 1<<20):  "unknown action type",
	} {
		err := doAction(ts.client.fc, typ, []byte("{}"))
		wantCode(t, fmt.Sprintf("type %.30q", typ), err, codes.InvalidArgument, msg)
	}
	err := ts.client.call(context.Background(), "lakehouse.v1.Nope", struct{}{}, nil)
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || errdefs.ExitCode(err) != 2 {
		t.Errorf("client error %v (exit %d), want invalid argument (exit 2)", err, errdefs.ExitCode(err))
	}
	settleGoroutines(t, before)
}

func TestHugeBodies(t *testing.T) {
	ts, _, before := wireServer(t)
	state := catalogState(t, ts.svc)
	func() {
		// A client that sends more than the server takes.
		conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(2*MaxMessageSize)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fc := flight.NewFlightServiceClient(conn)
		huge := make([]byte, MaxMessageSize+1)
		err = doAction(fc, ActionCreateBranch, huge)
		wantCode(t, "huge action body", err, codes.ResourceExhausted, "larger than max")
		if e := FromStatus(err, ts.addr); errdefs.ExitCode(e) == 0 || !strings.Contains(e.Error(), "larger") {
			t.Errorf("the client's error: %v", e)
		}

		// A DoPut whose batch is over the limit.
		stream, err := fc.DoPut(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sc := arrow.NewSchema([]arrow.Field{{Name: "b", Type: arrow.BinaryTypes.Binary}}, nil)
		w := flight.NewRecordWriter(stream, ipc.WithSchema(sc))
		cmd, _ := json.Marshal(UploadCommand{Upload: &Upload{Name: "huge.arrow"}})
		w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
		bb := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
		bb.Append(huge)
		col := bb.NewArray()
		bb.Release()
		rec := array.NewRecordBatch(sc, []arrow.Array{col}, 1)
		col.Release()
		w.Write(rec) // the server ends the call: the error comes with Recv
		rec.Release()
		w.Close()
		stream.CloseSend()
		_, err = stream.Recv()
		wantCode(t, "huge DoPut batch", err, codes.ResourceExhausted, "larger than max")
	}()
	if files := ts.uploadFiles(t); len(files) > 0 {
		t.Errorf("uploads left: %v", files)
	}
	if got := catalogState(t, ts.svc); got != state {
		t.Errorf("the catalog changed:\n%s\nwas\n%s", got, state)
	}
	settleGoroutines(t, before)
}

// putBatch sends one batch with DoPut under the descriptor command cmd
// (nil: no descriptor) and returns the answer.
func putBatch(t *testing.T, fc flight.FlightServiceClient, cmd []byte, rec arrow.RecordBatch) (*UploadResult, error) {
	t.Helper()
	stream, err := fc.DoPut(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := flight.NewRecordWriter(stream, ipc.WithSchema(rec.Schema()))
	if cmd != nil {
		w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
	}
	w.Write(rec)
	w.Close()
	stream.CloseSend()
	res, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			break
		}
	}
	var up UploadResult
	if err := json.Unmarshal(res.GetAppMetadata(), &up); err != nil {
		t.Fatal(err)
	}
	return &up, nil
}

func stringsRecord(names ...string) arrow.RecordBatch {
	fields := make([]arrow.Field, len(names))
	cols := make([]arrow.Array, len(names))
	for i, n := range names {
		fields[i] = arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
		b := array.NewStringBuilder(memory.DefaultAllocator)
		b.AppendValues([]string{"a", "b"}, nil)
		cols[i] = b.NewArray()
		b.Release()
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, 2)
	for _, c := range cols {
		c.Release()
	}
	return rec
}

func TestBadUploads(t *testing.T) {
	ts, _, before := wireServer(t)
	state := catalogState(t, ts.svc)
	fc := ts.client.fc
	rec := stringsRecord("id", "name")
	defer rec.Release()
	cmd := func(u *Upload) []byte { b, _ := json.Marshal(UploadCommand{Upload: u}); return b }
	for name, c := range map[string][]byte{
		"no descriptor":  nil,
		"malformed":      []byte(`{"upload": `),
		"no upload":      []byte(`{}`),
		"no name":        cmd(&Upload{Size: 3}),
		"negative size":  cmd(&Upload{Name: "x.csv", Size: -1}),
		"unknown format": cmd(&Upload{Name: "x.csv", Format: "xlsx"}),
	} {
		_, err := putBatch(t, fc, c, rec)
		wantCode(t, name, err, codes.InvalidArgument, "upload")
	}

	// A DoPut whose schema conflicts with the table: the import fails,
	// naming the client's file, and changes nothing.
	imp := func(up *UploadResult) error {
		return ts.client.call(context.Background(), ActionImportTable, ImportBody{Branch: "tester.dev", Namespace: "sales", Table: "t",
			Sources: []string{UploadSourcePrefix + up.UploadID}}, nil)
	}
	up, err := putBatch(t, fc, cmd(&Upload{Name: "/home/me/typed.arrow", Size: 10, MtimeNs: 1}), rec)
	if err != nil {
		t.Fatal(err)
	}
	err = imp(up)
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `file /home/me/typed.arrow: column "id" is string in the file but long in table sales.t`) {
		t.Errorf("typed conflict: %v", err)
	}
	other := stringsRecord("id", "other")
	defer other.Release()
	up, err = putBatch(t, fc, cmd(&Upload{Name: "/home/me/other.csv", Size: 10, MtimeNs: 1, Format: "csv"}), other)
	if err != nil {
		t.Fatal(err)
	}
	err = imp(up)
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `file /home/me/other.csv: column "id" is string in the file but long in table sales.t`) {
		t.Errorf("csv conflict: %v", err)
	}
	// A CSV upload whose columns are not text.
	nano := nanoRecord()
	defer nano.Release()
	up, err = putBatch(t, fc, cmd(&Upload{Name: "/home/me/n.csv", Format: "csv"}), nano)
	if err != nil {
		t.Fatal(err)
	}
	err = imp(up)
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "not the text of a CSV field") {
		t.Errorf("csv upload of typed columns: %v", err)
	}
	// Another caller's upload or a used one is not found.
	if err := imp(up); !errdefs.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second import of an upload: %v", err)
	}
	if files := ts.uploadFiles(t); len(files) > 0 {
		t.Errorf("uploads left: %v", files)
	}
	if got := catalogState(t, ts.svc); got != state {
		t.Errorf("the catalog changed:\n%s\nwas\n%s", got, state)
	}
	settleGoroutines(t, before)
}

func TestDisconnectMidDoGet(t *testing.T) {
	ts, q, before := wireServer(t)
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		r, err := ts.client.Query(ctx, QueryCommand{SQL: "SELECT * FROM endless"})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Next() {
			t.Fatalf("no batch: %v", r.Err())
		}
		cancel() // the client goes away mid-stream
		r.Release()
	}
	// A query started but never read is dropped with its connection's
	// end only after QueryTTL; one read once is closed at once.
	deadline := time.Now().Add(10 * time.Second)
	for q.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := q.open.Load(); n > 0 {
		t.Errorf("%d queries still open after their clients left", n)
	}
	settleGoroutines(t, before)
}

func TestDisconnectMidDoPut(t *testing.T) {
	ts, _, before := wireServer(t)
	state := catalogState(t, ts.svc)
	rec := stringsRecord("id", "name")
	defer rec.Release()
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := ts.client.fc.DoPut(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w := flight.NewRecordWriter(stream, ipc.WithSchema(rec.Schema()))
		cmd, _ := json.Marshal(UploadCommand{Upload: &Upload{Name: "/home/me/a.csv", Format: "csv"}})
		w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
		for range 5 {
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond) // let the server start the file
		cancel()                          // gone without ending the stream
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(ts.uploadFiles(t)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if files := ts.uploadFiles(t); len(files) > 0 {
		t.Errorf("uploads left by clients that went away: %v", files)
	}
	ts.srv.uploads.mu.Lock()
	staged, n := ts.srv.uploads.bytes, len(ts.srv.uploads.files)
	ts.srv.uploads.mu.Unlock()
	if staged != 0 || n != 0 {
		t.Errorf("uploads still counted: %d bytes, %d files", staged, n)
	}
	if got := catalogState(t, ts.svc); got != state {
		t.Errorf("the catalog changed:\n%s\nwas\n%s", got, state)
	}
	settleGoroutines(t, before)
}
