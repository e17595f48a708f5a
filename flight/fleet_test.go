package flight

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"google.golang.org/grpc"
)

// testKeys authenticates the keys "worker", "reader" and "admin" as
// principals of those roles.
type testKeys struct{}

func (testKeys) Authenticate(_ context.Context, key string) (Principal, error) {
	r := Role(key)
	if !r.Valid() {
		return Principal{}, errdefs.WithHint(errdefs.ErrUnauthenticated, passKeyHint, "unknown API key")
	}
	return Principal{User: "u-" + key, Role: r}, nil
}

func workerRegistration(name, instance, version string) fleet.Registration {
	return fleet.Registration{Name: name, Instance: instance, Version: version, Addr: "127.0.0.1:9999",
		Cores: 4, MemoryBytes: 8 << 30, ShmFreeBytes: 1 << 30, Launcher: "process"}
}

// TestFleetActions: the fleet's actions on a control plane with keys,
// each bad input with its class, and a worker key kept to them.
func TestFleetActions(t *testing.T) {
	ctx := context.Background()
	reg, err := fleet.NewRegistry(fleet.Config{Version: "v9", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, Options{Version: "v9", Role: "control", Fleet: reg, Auth: testKeys{}})
	as := func(key string) *Client {
		c, err := Dial(ts.addr, DialOptions{APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	worker, reader, admin, bogus := as("worker"), as("reader"), as("admin"), as("bogus")

	lease, err := worker.RegisterWorker(ctx, workerRegistration("w1", "00000001", "v9"))
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.WorkerHeartbeat(ctx, fleet.Heartbeat{Name: "w1", Lease: lease.ID, Load: fleet.Load{Running: 3}}); err != nil {
		t.Fatal(err)
	}
	ws, err := reader.ListWorkers(ctx)
	if err != nil || len(ws) != 1 || ws[0].Name != "w1" || ws[0].Load.Running != 3 || ws[0].State != fleet.StateAlive {
		t.Fatalf("ListWorkers = %+v, %v", ws, err)
	}

	for _, tc := range []struct {
		name  string
		call  func() error
		class error
		msg   string
	}{
		{"wrong key", func() error {
			_, err := bogus.RegisterWorker(ctx, workerRegistration("w2", "00000002", "v9"))
			return err
		}, errdefs.ErrUnauthenticated, "unknown API key"},
		{"admin key joins", func() error {
			_, err := admin.RegisterWorker(ctx, workerRegistration("w2", "00000002", "v9"))
			return err
		}, errdefs.ErrPermissionDenied, "a worker needs a key of role worker"},
		{"reader key heartbeats", func() error {
			return reader.WorkerHeartbeat(ctx, fleet.Heartbeat{Name: "w1", Lease: lease.ID})
		}, errdefs.ErrPermissionDenied, "role worker"},
		{"other version", func() error {
			_, err := worker.RegisterWorker(ctx, workerRegistration("w2", "00000002", "v8"))
			return err
		}, errdefs.ErrFailedPrecondition, "worker w2 runs lakehouse v8, and the control plane runs v9"},
		{"no version", func() error {
			_, err := worker.RegisterWorker(ctx, workerRegistration("w2", "00000002", ""))
			return err
		}, errdefs.ErrInvalidArgument, "sent no version"},
		{"name taken", func() error {
			_, err := worker.RegisterWorker(ctx, workerRegistration("w1", "00000002", "v9"))
			return err
		}, errdefs.ErrAlreadyExists, "--name"},
		{"unknown lease", func() error {
			return worker.WorkerHeartbeat(ctx, fleet.Heartbeat{Name: "w1", Lease: "feedface"})
		}, errdefs.ErrNotFound, "register again"},
		{"worker key lists branches", func() error {
			_, err := worker.ListBranches(ctx)
			return err
		}, errdefs.ErrPermissionDenied, "may not call ListBranches"},
		{"worker key lists workers", func() error {
			_, err := worker.ListWorkers(ctx)
			return err
		}, errdefs.ErrPermissionDenied, "may not call ListWorkers"},
		{"worker key queries", func() error {
			_, err := worker.Query(ctx, QueryCommand{SQL: "SELECT 1"})
			return err
		}, errdefs.ErrPermissionDenied, "may not call GetFlightInfo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errdefs.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, errdefs.ClassName(tc.class), tc.msg)
			}
		})
	}
	// None of the refusals changed the fleet.
	if ws := reg.Workers(ctx); len(ws) != 1 || ws[0].Lease != lease.ID {
		t.Fatalf("workers after refusals: %+v", ws)
	}
}

// TestFleetNotControl: a server that is not a control plane says so.
func TestFleetNotControl(t *testing.T) {
	ts := startTestServer(t, Options{Version: "v9", Role: "all"})
	_, err := ts.client.RegisterWorker(context.Background(), workerRegistration("w1", "00000001", "v9"))
	if !errdefs.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "--role control") {
		t.Fatalf("RegisterWorker on --role all: %v", err)
	}
	if _, err := ts.client.ListWorkers(context.Background()); !errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("ListWorkers on --role all: %v", err)
	}
}

// TestWorkerDataPlane: a worker's Flight server has no catalog; a ticket
// it does not hold is NotFound, and catalog actions are unknown there.
func TestWorkerDataPlane(t *testing.T) {
	c := serveWorker(t, Options{Version: "v9", Role: "worker"})
	ctx := context.Background()
	tkt, _ := json.Marshal(Ticket{QueryID: "0123456789abcdef"})
	stream, err := c.fc.DoGet(ctx, &flight.Ticket{Ticket: tkt})
	if err == nil {
		_, err = stream.Recv()
	}
	if err = c.err(err); !errdefs.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("DoGet of a ticket the worker does not hold: %v", err)
	}
	if _, err := c.ListBranches(ctx); !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "unknown action") {
		t.Fatalf("ListBranches on a worker: %v", err)
	}
	if info, err := c.ServerInfo(ctx); err != nil || info.Role != "worker" || info.Version != "v9" {
		t.Fatalf("ServerInfo of a worker: %+v, %v", info, err)
	}
	if _, err := c.RegisterWorker(ctx, workerRegistration("w1", "00000001", "v9")); !errdefs.Is(err, errdefs.ErrFailedPrecondition) ||
		!strings.Contains(err.Error(), "runs --role worker") {
		t.Fatalf("RegisterWorker on a worker: %v", err)
	}
	rec := stringsRecord("a")
	defer rec.Release()
	if _, err := putBatch(t, c.fc, nil, rec); !strings.Contains(c.err(err).Error(), "takes no uploads") {
		t.Fatalf("DoPut on a worker: %v", err)
	}
	if _, err := c.Query(ctx, QueryCommand{SQL: "SELECT 1"}); !errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("a query on a worker: %v", err)
	}
}

// oneBatch answers every query with one batch of names.
type oneBatch struct{}

func (oneBatch) Run(context.Context, QueryCommand) (array.RecordReader, func() error, error) {
	rec := stringsRecord("a", "b")
	defer rec.Release()
	r, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	return r, func() error { r.Release(); return nil }, err
}

func (oneBatch) Explain(context.Context, QueryCommand) (*ExplainResult, error) {
	return &ExplainResult{}, nil
}

// keysSeen lets every caller in and records the keys they send.
type keysSeen struct {
	mu   sync.Mutex
	keys []string
}

func (k *keysSeen) Authenticate(_ context.Context, key string) (Principal, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, key)
	return Principal{User: "anyone", Role: RoleReader}, nil
}

// redirect answers GetFlightInfo with an endpoint located at another
// server, as a control plane that placed the query on a worker does.
type redirect struct {
	flight.BaseFlightServer
	to string
}

func (r *redirect) GetFlightInfo(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	var q QueryCommand
	if err := json.Unmarshal(desc.GetCmd(), &q); err != nil {
		return nil, err
	}
	tkt, _ := json.Marshal(Ticket{Query: &q})
	return &flight.FlightInfo{FlightDescriptor: desc, Endpoint: []*flight.FlightEndpoint{{
		Ticket: &flight.Ticket{Ticket: tkt}, Location: []*flight.Location{{Uri: r.to}}}}}, nil
}

// TestQueryEndpointLocation: the client fetches a query's rows from the
// location its endpoint names, without sending its API key there.
func TestQueryEndpointLocation(t *testing.T) {
	serve := func(fs flight.FlightServer) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g := grpc.NewServer()
		flight.RegisterFlightServiceServer(g, fs)
		go g.Serve(lis)
		t.Cleanup(g.Stop)
		return lis.Addr().String()
	}
	seen := &keysSeen{}
	worker := NewServer(Options{Version: "v9", Role: "worker", Queries: oneBatch{}, Auth: seen})
	wlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go worker.Serve(wlis)
	t.Cleanup(worker.Stop)
	control := serve(&redirect{to: "grpc://" + wlis.Addr().String()})

	c, err := Dial(control, DialOptions{APIKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Query(context.Background(), QueryCommand{SQL: "SELECT name"})
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for r.Next() {
		rows += r.RecordBatch().NumRows()
	}
	if err := r.Err(); err != nil || rows != 2 {
		t.Fatalf("rows %d, %v", rows, err)
	}
	r.Release()
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if len(seen.keys) != 1 || seen.keys[0] != "" {
		t.Fatalf("the worker was sent keys %q", seen.keys)
	}

	// A location that does not answer is the worker's address in the error.
	gone := serve(&redirect{to: "grpc://127.0.0.1:1"})
	c2, err := Dial(gone, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Query(context.Background(), QueryCommand{SQL: "SELECT 1"}); !errdefs.Is(err, errdefs.ErrUnavailable) ||
		!strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("query located at a dead worker: %v", err)
	}
}

// serveWorker serves opts on a loopback port until the test ends and
// returns a client of it.
func serveWorker(t *testing.T, opts Options) *Client {
	t.Helper()
	_, c, _ := serveTest(t, opts, DialOptions{})
	return c
}

// serveTest serves opts on a loopback port until the test ends: the
// server, a client of it dialled with dial, and its address.
func serveTest(t testing.TB, opts Options, dial DialOptions) (*Server, *Client, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(opts)
	done := make(chan struct{})
	go func() { srv.Serve(lis); close(done) }()
	c, err := Dial(lis.Addr().String(), dial)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Stop()
		<-done
	})
	return srv, c, lis.Addr().String()
}
