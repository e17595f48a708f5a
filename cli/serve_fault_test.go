package cli

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// The fault test kills `lakehouse serve` with SIGKILL at random moments
// while clients load it (the load test's mix), then starts it again on the
// same data dir and port. After each kill: the catalog opens; every commit
// a client was answered for is on its branch; no commit is half there (each
// client's two tables, always committed together, are in the same state
// at the head of main, at each client's branch and at every merge); every
// branch whose creation was answered exists; while the server is down
// clients get Unavailable, and the CLI exits 6.
//
// Runs in flight when the server dies are the runs' concern: once the
// server runs pipelines, their test adds a run to this load and checks
// that the restarted server lists it as interrupted, its target untouched.

// Settings of TestServeFaults, from the environment.
const (
	envFaultPoints  = "LAKEHOUSE_SERVE_FAULT_POINTS"  // kills; default 100 (10 under -race)
	envFaultClients = "LAKEHOUSE_SERVE_FAULT_CLIENTS" // default 50
	envFaultWindow  = "LAKEHOUSE_SERVE_FAULT_WINDOW"  // a kill comes within this of the load's start; default 1s
)

func TestServeFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault test starts and kills the server many times")
	}
	defPoints := 100
	if raceBuild {
		defPoints = 10
	}
	points := envInt(t, envFaultPoints, defPoints)
	clients := envInt(t, envFaultClients, 50)
	window := envDuration(t, envFaultWindow, time.Second)
	dataDir := setupServeData(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d kill points within %s of the load's start, %d clients", seed, points, window, clients)
	rng := rand.New(rand.NewPCG(seed, 7))

	srv := startServe(t, dataDir, "127.0.0.1:0")
	addr := srv.hostPort()
	rec := newLoadRecord()
	lc := make([]*loadClient, clients)
	for i := range lc {
		lc[i] = newLoadClient(t, srv.Addr, i, seed, rec)
	}
	lc[0].prepare(t)
	for _, c := range lc[1:] {
		c.rows, c.imports, c.importFile = lc[0].rows, lc[0].imports, lc[0].importFile
		c.createWork(t)
	}
	check := newLoadClient(t, srv.Addr, clients, seed, rec)

	started := time.Now()
	var restarts time.Duration
	for k := range points {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("kill point %d (seed %d): %s", k, seed, fmt.Sprintf(format, args...))
		}
		mark := len(rec.all())
		delay := time.Duration(rng.Int64N(int64(window)))
		rec.killed.Store(false)
		var wg sync.WaitGroup
		for _, c := range lc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !rec.killed.Load() {
					c.step(context.Background())
				}
			}()
		}
		time.Sleep(delay)
		rec.killed.Store(true)
		srv.kill()
		wg.Wait()
		if n := rec.failed(); n > 0 {
			fail("%d requests failed; first ones:\n%s\nserver output:\n%s", n, strings.Join(rec.failures, "\n"), srv.out)
		}

		// Down: a client gets Unavailable; once, the CLI exits 6.
		if _, err := check.svc.ListBranches(context.Background()); !errdefs.Is(err, errdefs.ErrUnavailable) {
			fail("a call while the server is down: %v, want an Unavailable error", err)
		}
		if k == 0 {
			out, code := runCLI(t, dataDir, "--addr", srv.Addr, "branch", "ls")
			if code != errdefs.ExitUnavailable {
				fail("`lakehouse --addr %s branch ls` while the server is down exited %d, want %d:\n%s", srv.Addr, code, errdefs.ExitUnavailable, out)
			}
			t.Logf("while the server is down, `lakehouse --addr ... branch ls` exits %d: %s", code, strings.TrimSpace(out))
		}

		// Up again on the same data dir and port.
		restart := time.Now()
		srv = startServe(t, dataDir, addr)
		restarts += time.Since(restart)
		for _, c := range append(lc, check) {
			c.redial(t, srv.Addr)
		}
		check.verify(t, rec.all()[mark:])
		checkWhole(t, check, lc, fail)
	}
	rec.report(t)
	t.Logf("%d kills in %s; a restart took %s on average", points, time.Since(started).Round(time.Millisecond),
		(restarts / time.Duration(max(points, 1))).Round(time.Millisecond))
	// Every commit of every round, through the last restarted server.
	check.verify(t, rec.all())
	if took, err := srv.stop(time.Minute); err != nil {
		t.Fatalf("the server exited with %v %s after SIGTERM:\n%s", err, took, srv.out)
	}
}

// redial gives the client a new connection to addr (the old one may be
// in gRPC's reconnect backoff after the kill).
func (c *loadClient) redial(t testing.TB, addr string) {
	t.Helper()
	c.svc.Close()
	svc, err := flight.Dial(addr, flight.DialOptions{Author: fmt.Sprintf("client%d", c.id)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	c.svc = svc
}

// checkWhole checks after a restart that no commit is half there: each
// client's table pair is in one state at the head of main and of its
// branch, and there in the state it last committed (or the one of a
// commit the kill cut, which the client then takes as its state); and
// every branch whose creation was answered, and not its deletion, exists.
func checkWhole(t testing.TB, check *loadClient, lc []*loadClient, fail func(string, ...any)) {
	t.Helper()
	ctx := context.Background()
	onMain, err := states(ctx, check.svc, mainRef)
	if err != nil {
		fail("tables on main after the restart: %v", err)
	}
	for id, p := range onMain {
		if p[0] != p[1] {
			fail("main holds a commit half: the tables of client %d are at states %v", id, p)
		}
	}
	for _, c := range lc {
		st, err := states(ctx, check.svc, catalog.Ref{Name: string(c.work)})
		if err != nil {
			fail("tables on %s after the restart: %v", c.work, err)
		}
		p := st[c.id]
		switch {
		case p[0] != p[1]:
			fail("%s holds a commit half: the client's tables are at states %v", c.work, p)
		case p[0] == c.state:
		case c.cut && p[0] == c.pending:
			c.state = c.pending // the cut commit made it
		default:
			want := fmt.Sprint(c.state)
			if c.cut {
				want += " or " + fmt.Sprint(c.pending)
			}
			fail("%s holds the client's tables at state %d, want %s", c.work, p[0], want)
		}
		c.cut = false
	}
	check.rec.mu.Lock()
	var exist []catalog.BranchName
	for b, s := range check.rec.branches {
		if s == branchExists {
			exist = append(exist, b)
		}
	}
	check.rec.mu.Unlock()
	bs, err := check.svc.ListBranches(ctx)
	if err != nil {
		fail("list branches after the restart: %v", err)
	}
	have := map[catalog.BranchName]bool{}
	for _, b := range bs {
		have[b.Name] = true
	}
	for _, b := range exist {
		if !have[b] {
			fail("branch %s, whose creation was answered, is missing after the restart", b)
		}
	}
}

// TestServeStopDuringQuery sends SIGTERM to the server while queries
// stream: a query that ends within --shutdown-timeout ends with all its
// rows; one that would not is cut with an error within the timeout; new
// calls are refused meanwhile; the server exits 0 and leaves no process.
func TestServeStopDuringQuery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server twice")
	}
	dataDir := setupServeData(t)
	ctx := context.Background()

	t.Run("finishes", func(t *testing.T) {
		srv := startServe(t, dataDir, "127.0.0.1:0", "--shutdown-timeout", "60s")
		c, err := flight.Dial(srv.Addr, flight.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		const rows = 20_000_000
		r, err := c.Query(ctx, flight.QueryCommand{SQL: fmt.Sprintf("SELECT range AS n FROM range(%d)", rows)})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		if !r.Next() {
			t.Fatalf("no first batch: %v", r.Err())
		}
		n := r.RecordBatch().NumRows()
		stopped := make(chan error, 1)
		go func() { _, err := srv.stop(2 * time.Minute); stopped <- err }()
		// The listener closes at once: a new call is refused (the server
		// waits for this query meanwhile, which is not being read).
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			_, err := check(srv.Addr)
			if errdefs.Is(err, errdefs.ErrUnavailable) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a new call 20 s after SIGTERM: %v, want Unavailable", err)
			}
		}
		for r.Next() {
			n += r.RecordBatch().NumRows()
		}
		if err := r.Err(); err != nil || n != rows {
			t.Fatalf("the query running at SIGTERM read %d of %d rows: %v", n, rows, err)
		}
		if err := <-stopped; err != nil {
			t.Fatalf("the server exited with %v:\n%s", err, srv.out)
		}
		if groupAlive(srv.Pid()) {
			t.Fatalf("a process of the server's group is left")
		}
		t.Logf("a query of %d rows running at SIGTERM read them all; the server then exited 0", rows)
	})

	// Cut: a query that computes its answer before GetFlightInfo returns,
	// and one that streams but takes long for each batch (DoGet waits in
	// DuckDB): each is interrupted when the server stops waiting.
	for _, cut := range []struct{ name, sql string }{
		{"cut-starting", "SELECT sum(a.range * b.range) AS s FROM range(1000000) a, range(1000000) b"},
		{"cut-streaming", "SELECT range FROM range(1000000000000) WHERE range < 3000000 OR range % 1000000007 = 0"},
	} {
		t.Run(cut.name, func(t *testing.T) { stopCuts(t, dataDir, cut.sql) })
	}
}

// stopCuts starts sql on a server with a shutdown timeout of 2 s, stops
// the server and checks that it cut the query.
func stopCuts(t *testing.T, dataDir, sql string) {
	t.Helper()
	ctx := context.Background()
	const timeout = 2 * time.Second
	srv := startServe(t, dataDir, "127.0.0.1:0", "--shutdown-timeout", timeout.String())
	c, err := flight.Dial(srv.Addr, flight.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Hours of work either way.
	read := make(chan error, 1)
	var streaming atomic.Bool
	go func() {
		r, err := c.Query(ctx, flight.QueryCommand{SQL: sql})
		if err != nil {
			read <- err
			return
		}
		streaming.Store(true)
		defer r.Release()
		for r.Next() {
		}
		read <- r.Err()
	}()
	time.Sleep(500 * time.Millisecond)
	took, err := srv.stop(timeout + 30*time.Second)
	if err != nil {
		t.Fatalf("the server exited with %v:\n%s", err, srv.out)
	}
	if took > timeout+5*time.Second {
		t.Errorf("the server took %s to stop, with a shutdown timeout of %s", took, timeout)
	}
	select {
	case err := <-read:
		if err == nil {
			t.Fatalf("the cut query ended without an error")
		}
		phase := "starting (in GetFlightInfo)"
		if streaming.Load() {
			phase = "streaming (in DoGet)"
		}
		t.Logf("the server stopped %s after SIGTERM; the query, %s, got: %v", took.Round(time.Millisecond), phase, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("the query is still reading 10 s after the server stopped")
	}
	if groupAlive(srv.Pid()) {
		t.Fatalf("a process of the server's group is left")
	}
	// The catalog is closed cleanly: it opens in the next server.
	srv = startServe(t, dataDir, "127.0.0.1:0")
	if _, err := srv.stop(time.Minute); err != nil {
		t.Fatalf("the server exited with %v:\n%s", err, srv.out)
	}
}

// check makes one call on a new connection to addr.
func check(addr string) ([]catalog.BranchInfo, error) {
	c, err := flight.Dial(addr, flight.DialOptions{})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.ListBranches(ctx)
}
