package flight

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"google.golang.org/grpc/codes"
)

// Arrow messages crafted to make arrow-go allocate what their counts and
// sizes say (tens of GiB: the process dies, no recover catches it) are
// refused before arrow-go reads them: uploads (DoPut) on the server, a
// query's stream on the client.
func TestHostileArrowMessages(t *testing.T) {
	ts, _, before := wireServer(t)
	state := catalogState(t, ts.svc)
	cmd, _ := json.Marshal(UploadCommand{Upload: &Upload{Name: "hostile.arrow"}})
	desc := &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd}
	bomb := ipctest.CompressionBomb(t)
	for name, c := range map[string]struct {
		msgs []ipctest.Message
		want string
	}{
		"schema of 335M fields in 115 bytes": {[]ipctest.Message{{Header: ipctest.HugeSchema}}, "does not fit"},
		"batch that decompresses to 1 TiB":   {bomb, "uncompressed"},
	} {
		t.Run(name, func(t *testing.T) {
			stream, err := ts.client.fc.DoPut(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range c.msgs {
				fd := &flight.FlightData{DataHeader: m.Header, DataBody: m.Body}
				if i == 0 {
					fd.FlightDescriptor = desc
				}
				if err := stream.Send(fd); err != nil {
					break // the server ended the call: its answer comes with Recv
				}
			}
			stream.CloseSend()
			_, err = stream.Recv()
			wantCode(t, name, err, codes.InvalidArgument, c.want)

			// The client refuses the same from a server.
			ms, err := newMessageStream(&fakeStream{msgs: received(c.msgs, 1<<30)})
			if err != nil {
				t.Fatal(err)
			}
			r, err := ipc.NewReaderFromMessageReader(ms)
			if err == nil {
				if r.Next() || r.Err() == nil {
					t.Error("the client read the batch")
				}
				err = r.Err()
				r.Release()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("client: %v, want an error saying %q", err, c.want)
			}
		})
	}
	// The server is still up, with nothing staged and nothing changed.
	if _, err := ts.client.ServerInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if files := ts.uploadFiles(t); len(files) > 0 {
		t.Errorf("uploads left: %v", files)
	}
	if got := catalogState(t, ts.svc); got != state {
		t.Errorf("the catalog changed:\n%s\nwas\n%s", got, state)
	}
	settleGoroutines(t, before)
}

// panickyQueries panic on every query, as a bug reached by a request would.
type panickyQueries struct{}

func (panickyQueries) Run(context.Context, QueryCommand) (array.RecordReader, func() error, error) {
	panic("a bug")
}

func (panickyQueries) Explain(context.Context, QueryCommand) (*ExplainResult, error) {
	panic("a bug")
}

// A panic in a call's handler fails that call (Internal), not the server.
func TestHandlerPanicFailsTheCall(t *testing.T) {
	ts := startTestServer(t, Options{Queries: panickyQueries{}})
	ctx := context.Background()
	for range 2 {
		_, err := ts.client.Query(ctx, QueryCommand{SQL: "SELECT 1"}) // GetFlightInfo, unary
		if !errdefs.Is(err, errdefs.ErrInternal) || !strings.Contains(err.Error(), "bug of the server") {
			t.Errorf("query: %v", err)
		}
		_, err = ts.client.Explain(ctx, QueryCommand{SQL: "SELECT 1"}) // DoAction, a stream
		if !errdefs.Is(err, errdefs.ErrInternal) || !strings.Contains(err.Error(), "bug of the server") {
			t.Errorf("explain: %v", err)
		}
	}
	if _, err := ts.client.ServerInfo(ctx); err != nil {
		t.Fatalf("the server after two panics: %v", err)
	}
}
