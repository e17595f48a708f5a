package flight

import (
	"sort"
	"testing"

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
