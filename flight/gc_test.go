package flight

import (
	"context"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/keys"
	"github.com/lakehouse-dev/lakehouse/catalog/memstore"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// fakeGC answers with rep and err, and records the body it was given.
type fakeGC struct {
	rep   *GCReport
	err   error
	calls []GCBody
}

func (f *fakeGC) GC(_ context.Context, b GCBody) (*GCReport, error) {
	f.calls = append(f.calls, b)
	return f.rep, f.err
}

// TestGCAction: the gc action is an admin's; the body reaches the
// collector as sent; a report of a partial failure comes back with its
// error; a server without a collector says so.
func TestGCAction(t *testing.T) {
	ctx := context.Background()
	k := keys.New(memstore.New(), keys.Options{})
	_, admin, err := k.Create(ctx, keys.NewKey{User: "root", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	_, writer, err := k.Create(ctx, keys.NewKey{User: "alice", Role: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	rep := &GCReport{GCResult: &catalog.GCResult{Deleted: []catalog.GCFile{{Key: "sales/x.parquet", Size: 7}}, DeletedBytes: 7},
		Warehouse: "file:///wh", ExpiredRuns: []ExpiredRun{}}
	fake := &fakeGC{rep: rep, err: errdefs.New(errdefs.ErrUnavailable, "gc: 1 file(s) could not be deleted")}
	ts := startTestServer(t, Options{GC: fake, Auth: KeyAuthenticator(k), Keys: k})
	dial := func(key string) *Client {
		c, err := Dial(ts.addr, DialOptions{APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	body := GCBody{DryRun: true, Grace: "2h", FailedRunsRetention: "0", ExpireCommits: "30d"}
	if _, err := dial(writer).GC(ctx, body); !errdefs.Is(err, errdefs.ErrPermissionDenied) {
		t.Fatalf("gc by a writer: %v, want permission denied", err)
	}
	if len(fake.calls) != 0 {
		t.Fatalf("the collector ran for a writer: %+v", fake.calls)
	}
	got, err := dial(admin).GC(ctx, body)
	if !errdefs.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("gc that could not delete a file: %v, want its error", err)
	}
	if got == nil || got.Warehouse != "file:///wh" || len(got.Deleted) != 1 || got.Deleted[0].Key != "sales/x.parquet" || got.DeletedBytes != 7 {
		t.Fatalf("the report of a partial gc: %+v", got)
	}
	if len(fake.calls) != 1 || fake.calls[0] != body {
		t.Fatalf("the collector got %+v, want %+v", fake.calls, body)
	}

	fake.rep, fake.err = nil, errdefs.New(errdefs.ErrInvalidArgument, `invalid --grace "soon"`)
	if got, err := dial(admin).GC(ctx, GCBody{Grace: "soon"}); got != nil || !errdefs.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("a bad body: %+v, %v", got, err)
	}

	bare := startTestServer(t, Options{})
	if _, err := bare.client.GC(ctx, GCBody{}); !errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("gc on a server without a collector: %v", err)
	}
}
