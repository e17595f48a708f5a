package flight

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FuzzActions sends arbitrary bodies to every action the server knows:
// each is answered, with a class other than Internal (a bug, or a panic
// the interceptors caught), whatever the body.
//
//	go test ./flight -run '^$' -fuzz FuzzActions -fuzztime 2m
func FuzzActions(f *testing.F) {
	ts := startTestServer(f, Options{Queries: &endlessQueries{}})
	var types []string
	for typ := range ts.srv.actions {
		types = append(types, typ)
	}
	sort.Strings(types)
	for i := range types {
		for _, body := range []string{`{}`, `{"name": "tester.x", "from": "main"}`, `{"branch": "main", "namespace": "sales", "table": "t", "ref": "main"}`,
			`{"sql": "SELECT 1", "ref": "main"}`, `{"source": "main", "into": "tester.y"}`, `{"id": "x", "worker": "w", "lease": 1}`, `[`, "\x00"} {
			f.Add(uint8(i), []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		typ := types[int(which)%len(types)]
		err := doAction(ts.client.fc, typ, body)
		if c := status.Code(err); c == codes.Internal || c == codes.Unknown {
			t.Fatalf("%s %q: %v", typ, body, err)
		}
	})
}

// FuzzCommands sends arbitrary commands to GetFlightInfo and arbitrary
// tickets to DoGet: each is answered, with a class other than Internal.
func FuzzCommands(f *testing.F) {
	ts := startTestServer(f, Options{Queries: &endlessQueries{}})
	for _, s := range []string{`{"sql": "SELECT 1"}`, `{"sql": "SELECT 1", "ref": "main", "namespace": "sales"}`, `{"sql": ""}`,
		`{"intermediate": "x"}`, "\x0a\x05hello", "", "{", `{"sql": "SELECT 1", "locations": true, "avoid": ["grpc://x"]}`} {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}
	f.Fuzz(func(t *testing.T, ticket bool, b []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if ticket {
			var stream flight.FlightService_DoGetClient
			if stream, err = ts.client.fc.DoGet(ctx, &flight.Ticket{Ticket: b}); err == nil {
				_, err = stream.Recv()
			}
		} else {
			_, err = ts.client.fc.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: b})
		}
		if c := status.Code(err); c == codes.Internal || c == codes.Unknown {
			t.Fatalf("ticket %v %q: %v", ticket, b, err)
		}
	})
}
