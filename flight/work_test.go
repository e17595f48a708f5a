package flight

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
)

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// workControl is a control plane with a registry, a work hub and keys
// (testKeys) on a loopback port.
type workControl struct {
	reg  *fleet.Registry
	hub  *WorkHub
	addr string
	held *Intermediates
	log  *syncBuffer
}

// noLeaks fails t if goroutines started during it are still running
// shortly after its cleanups (registered after noLeaks, they run first).
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func startWorkControl(t *testing.T, timeout time.Duration) *workControl {
	t.Helper()
	reg, err := fleet.NewRegistry(fleet.Config{Version: "v9", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wc := &workControl{reg: reg, hub: NewWorkHub(reg, log), held: NewIntermediates(), log: logs}
	_, _, wc.addr = serveTest(t, Options{Version: "v9", Role: "control", Fleet: reg, Work: wc.hub, Auth: testKeys{},
		Intermediates: wc.held}, DialOptions{})
	return wc
}

// dial is a client of the control plane with key.
func (wc *workControl) dial(t *testing.T, key string) *Client {
	t.Helper()
	c, err := Dial(wc.addr, DialOptions{APIKey: key, RetryDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// join registers worker name (instance "00000001") and returns its lease.
func (wc *workControl) join(t *testing.T, c *Client, name string) string {
	t.Helper()
	l, err := c.RegisterWorker(context.Background(), workerRegistration(name, "00000001", "v9"))
	if err != nil {
		t.Fatal(err)
	}
	return l.ID
}

// waitConnected waits until worker has a stream under lease.
func (wc *workControl) waitConnected(t *testing.T, worker, lease string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if l, ok := wc.hub.Connected(worker); ok && l == lease {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s never connected under lease %s", worker, lease)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// heartbeat keeps lease alive until the returned stop is called.
func heartbeat(t *testing.T, c *Client, name string, lease *atomic.Value, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sleep(ctx, every) {
			c.WorkerHeartbeat(ctx, fleet.Heartbeat{Name: name, Lease: lease.Load().(string)})
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// runWorkServer runs ServeWork for worker name under *lease until the
// returned stop is called, which returns ServeWork's error.
func runWorkServer(t *testing.T, c *Client, name string, lease *atomic.Value, handle fleet.WorkHandler, onNote func(json.RawMessage)) (*WorkServer, func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	ws := NewWorkServer(c, func() (string, string, bool) {
		l, _ := lease.Load().(string)
		return name, l, l != ""
	}, handle, onNote)
	done := make(chan error, 1)
	go func() { done <- ws.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return ws, stop
}

func leaseValue(l string) *atomic.Value {
	var v atomic.Value
	v.Store(l)
	return &v
}

// TestWorkRoundTrip: tasks placed at once each get their events in order
// and their result; a handler's error comes back as its errdefs error; a
// broadcast note reaches the worker.
func TestWorkRoundTrip(t *testing.T) {
	noLeaks(t)
	wc := startWorkControl(t, time.Minute)
	wcl := wc.dial(t, "worker")
	lease := wc.join(t, wcl, "w1")
	notes := make(chan string, 1)
	handle := func(ctx context.Context, task json.RawMessage, emit func(json.RawMessage)) (json.RawMessage, error) {
		var n int
		if err := json.Unmarshal(task, &n); err != nil {
			return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "send a number", "task %s is not a number", task)
		}
		for i := range n {
			emit(json.RawMessage(fmt.Sprint(i)))
		}
		return json.RawMessage(fmt.Sprintf(`{"done":%d}`, n)), nil
	}
	ws, stop := runWorkServer(t, wcl, "w1", leaseValue(lease), handle, func(n json.RawMessage) { notes <- string(n) })
	wc.waitConnected(t, "w1", lease)

	var wg sync.WaitGroup
	for n := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []int
			res, err := wc.hub.Assign(context.Background(), "w1", lease, json.RawMessage(fmt.Sprint(n*10)), func(ev json.RawMessage) {
				var i int
				json.Unmarshal(ev, &i)
				got = append(got, i)
			})
			if err != nil || string(res) != fmt.Sprintf(`{"done":%d}`, n*10) {
				t.Errorf("task %d: %s, %v", n, res, err)
			}
			for i, v := range got {
				if i != v {
					t.Errorf("task %d: events out of order: %v", n, got)
					break
				}
			}
			if len(got) != n*10 {
				t.Errorf("task %d: %d events, want %d", n, len(got), n*10)
			}
		}()
	}
	wg.Wait()

	_, err := wc.hub.Assign(context.Background(), "w1", lease, json.RawMessage(`"x"`), nil)
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `task "x" is not a number`) {
		t.Fatalf("handler error = %v", err)
	}
	if _, hint := errdefs.Split(err); hint != "send a number" {
		t.Fatalf("hint = %q", hint)
	}

	wc.hub.Broadcast(json.RawMessage(`{"run":"r1"}`))
	select {
	case n := <-notes:
		if n != `{"run":"r1"}` {
			t.Fatalf("note = %s", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the note never came")
	}
	if ws.Running() != 0 {
		t.Fatalf("running = %d", ws.Running())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// blocker is a handler that blocks until its ctx ends, counting the
// tasks it runs and reporting each end.
type blocker struct {
	started chan json.RawMessage
	ended   chan error
}

func newBlocker() *blocker {
	return &blocker{started: make(chan json.RawMessage, 10), ended: make(chan error, 10)}
}

func (b *blocker) handle(ctx context.Context, task json.RawMessage, emit func(json.RawMessage)) (json.RawMessage, error) {
	b.started <- task
	<-ctx.Done()
	b.ended <- ctx.Err()
	return nil, ctx.Err()
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

// TestWorkCancel: a caller that gives up gets its cause at once, and the
// handler's ctx ends.
func TestWorkCancel(t *testing.T) {
	noLeaks(t)
	wc := startWorkControl(t, time.Minute)
	wcl := wc.dial(t, "worker")
	lease := wc.join(t, wcl, "w1")
	b := newBlocker()
	ws, stop := runWorkServer(t, wcl, "w1", leaseValue(lease), b.handle, nil)
	wc.waitConnected(t, "w1", lease)

	ctx, cancel := context.WithCancelCause(context.Background())
	why := errors.New("the run was cancelled")
	errc := make(chan error, 1)
	go func() {
		_, err := wc.hub.Assign(ctx, "w1", lease, json.RawMessage(`1`), nil)
		errc <- err
	}()
	recv(t, b.started, "the task to start")
	if ws.Running() != 1 {
		t.Fatalf("running = %d", ws.Running())
	}
	cancel(why)
	if err := recv(t, errc, "Assign to return"); err != why {
		t.Fatalf("Assign = %v, want the cause", err)
	}
	if err := recv(t, b.ended, "the handler's ctx to end"); err != context.Canceled {
		t.Fatalf("handler ctx = %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestWorkWorkerGone: a worker that stops (its stream closes) loses its
// tasks on the control plane, and cancels them and waits for them before
// ServeWork returns.
func TestWorkWorkerGone(t *testing.T) {
	noLeaks(t)
	wc := startWorkControl(t, time.Minute)
	wcl := wc.dial(t, "worker")
	lease := wc.join(t, wcl, "w1")
	var returned atomic.Bool
	b := newBlocker()
	handle := func(ctx context.Context, task json.RawMessage, emit func(json.RawMessage)) (json.RawMessage, error) {
		defer returned.Store(true)
		res, err := b.handle(ctx, task, emit)
		time.Sleep(50 * time.Millisecond) // a handler slow to stop
		return res, err
	}
	_, stop := runWorkServer(t, wcl, "w1", leaseValue(lease), handle, nil)
	wc.waitConnected(t, "w1", lease)

	errc := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := wc.hub.Assign(context.Background(), "w1", lease, json.RawMessage(`1`), nil)
			errc <- err
		}()
	}
	recv(t, b.started, "task 1")
	recv(t, b.started, "task 2")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !returned.Load() {
		t.Fatal("ServeWork returned before its handlers")
	}
	for range 2 {
		if err := recv(t, errc, "Assign to return"); !errors.Is(err, fleet.ErrWorkerLost) {
			t.Fatalf("Assign = %v, want ErrWorkerLost", err)
		}
		recv(t, b.ended, "a handler's ctx to end")
	}
	if _, ok := wc.hub.Connected("w1"); ok {
		t.Fatal("the hub still lists the worker's stream")
	}
}

// rawStream is a work stream opened by hand (a worker that does what the
// test says).
type rawStream struct {
	flight.FlightService_DoExchangeClient
	cancel context.CancelFunc
}

func openRaw(t *testing.T, c *Client, cmd any) *rawStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := c.fc.DoExchange(c.callContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	fd := &flight.FlightData{}
	switch cmd := cmd.(type) {
	case nil:
	case []byte:
		fd.FlightDescriptor = &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd}
	default:
		b, _ := json.Marshal(cmd)
		fd.FlightDescriptor = &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: b}
	}
	// io.EOF: the server refused the stream already; next says why.
	if err := s.Send(fd); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return &rawStream{FlightService_DoExchangeClient: s, cancel: cancel}
}

// next reads the next message; the stream's end is the server's error.
func (r *rawStream) next(c *Client) (WorkMessage, error) {
	fd, err := r.Recv()
	if err != nil {
		return WorkMessage{}, c.err(err)
	}
	var m WorkMessage
	err = json.Unmarshal(fd.GetAppMetadata(), &m)
	return m, err
}

func (r *rawStream) send(t *testing.T, m WorkMessage) {
	t.Helper()
	if err := sendWork(r, m); err != nil {
		t.Fatal(err)
	}
}

// TestWorkLeaseDeath: a worker that stops heartbeating loses its stream
// and its tasks; what it sends later, on that stream or on the stream of
// its next lease, never reaches a caller.
func TestWorkLeaseDeath(t *testing.T) {
	noLeaks(t)
	wc := startWorkControl(t, 300*time.Millisecond)
	wcl := wc.dial(t, "worker")
	lease := wc.join(t, wcl, "w1")
	raw := openRaw(t, wcl, WorkCommand{Protocol: WorkProtocol, Worker: "w1", Lease: lease})
	if m, err := raw.next(wcl); err != nil || m.Type != msgOpen {
		t.Fatalf("first message = %+v, %v", m, err)
	}
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := wc.hub.Assign(context.Background(), "w1", lease, json.RawMessage(`"stalls"`), nil)
		errc <- err
	}()
	task, err := raw.next(wcl)
	if err != nil || task.Type != msgTask {
		t.Fatalf("task = %+v, %v", task, err)
	}
	// No heartbeat: the lease dies after 300ms, and the hub sees it within
	// a quarter of that.
	err = recv(t, errc, "Assign to lose the worker")
	if !errors.Is(err, fleet.ErrWorkerLost) || !errdefs.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "dead") {
		t.Fatalf("Assign = %v, want ErrWorkerLost of a dead lease", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("lost after %s", d)
	}
	// The stalled handler answers late, on its old stream: refused.
	sendWork(raw, WorkMessage{Type: msgResult, ID: task.ID, Body: json.RawMessage(`"late"`)})
	if _, err := raw.next(wcl); !errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("old stream ends with %v, want the dead lease", err)
	}

	// The worker registers again and answers on its new stream: refused
	// too, while the new stream's own task gets its own result.
	lease2 := wc.join(t, wcl, "w1")
	raw2 := openRaw(t, wcl, WorkCommand{Protocol: WorkProtocol, Worker: "w1", Lease: lease2})
	if m, err := raw2.next(wcl); err != nil || m.Type != msgOpen {
		t.Fatalf("first message = %+v, %v", m, err)
	}
	resc := make(chan string, 1)
	go func() {
		res, err := wc.hub.Assign(context.Background(), "w1", lease2, json.RawMessage(`"fresh"`), nil)
		resc <- fmt.Sprint(string(res), err)
	}()
	task2, err := raw2.next(wcl)
	if err != nil || task2.ID == task.ID {
		t.Fatalf("task = %+v, %v", task2, err)
	}
	raw2.send(t, WorkMessage{Type: msgResult, ID: task.ID, Body: json.RawMessage(`"late"`)})
	raw2.send(t, WorkMessage{Type: msgResult, ID: task2.ID, Body: json.RawMessage(`"fresh"`)})
	if got := recv(t, resc, "the new task's result"); got != `"fresh"<nil>` {
		t.Fatalf("Assign = %s", got)
	}
	if !strings.Contains(wc.log.String(), fmt.Sprintf("message refused: no such task waits\" worker=w1 task=%d", task.ID)) {
		t.Fatalf("the late result was not refused:\n%s", wc.log.String())
	}
	raw2.CloseSend()
	if _, err := raw2.next(wcl); err == nil {
		t.Fatal("the stream did not end")
	}
}

// TestWorkReconnect: when its lease dies, ServeWork opens the stream
// again under the worker's new lease, and takes tasks there.
func TestWorkReconnect(t *testing.T) {
	noLeaks(t)
	wc := startWorkControl(t, 300*time.Millisecond)
	wcl := wc.dial(t, "worker")
	lease := leaseValue(wc.join(t, wcl, "w1"))
	stopBeat := heartbeat(t, wcl, "w1", lease, 50*time.Millisecond)
	b := newBlocker()
	var calls atomic.Int64
	handle := func(ctx context.Context, task json.RawMessage, emit func(json.RawMessage)) (json.RawMessage, error) {
		if calls.Add(1) == 1 {
			return b.handle(ctx, task, emit)
		}
		return task, nil
	}
	_, stop := runWorkServer(t, wcl, "w1", lease, handle, nil)
	first := lease.Load().(string)
	wc.waitConnected(t, "w1", first)

	errc := make(chan error, 1)
	go func() {
		_, err := wc.hub.Assign(context.Background(), "w1", first, json.RawMessage(`1`), nil)
		errc <- err
	}()
	recv(t, b.started, "the task")
	stopBeat()
	if err := recv(t, errc, "Assign to lose the worker"); !errors.Is(err, fleet.ErrWorkerLost) {
		t.Fatalf("Assign = %v", err)
	}
	recv(t, b.ended, "the handler to be cancelled")
	// The member registers again (here, the test).
	second := wc.join(t, wcl, "w1")
	lease.Store(second)
	heartbeat(t, wcl, "w1", lease, 50*time.Millisecond)
	wc.waitConnected(t, "w1", second)
	res, err := wc.hub.Assign(context.Background(), "w1", second, json.RawMessage(`"again"`), nil)
	if err != nil || string(res) != `"again"` {
		t.Fatalf("Assign = %s, %v", res, err)
	}
	if _, err := wc.hub.Assign(context.Background(), "w1", first, json.RawMessage(`1`), nil); !errors.Is(err, fleet.ErrWorkerLost) {
		t.Fatalf("Assign under the old lease = %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestWorkBadInput: streams the control plane refuses, each with its
// class, and tasks for workers without a stream.
func TestWorkBadInput(t *testing.T) {
	noLeaks(t)
	wc := startWorkControl(t, 300*time.Millisecond)
	wcl, reader, admin := wc.dial(t, "worker"), wc.dial(t, "reader"), wc.dial(t, "admin")
	deadLease := wc.join(t, wcl, "dead")
	live := wc.join(t, wcl, "w1")
	stopBeat := heartbeat(t, wcl, "w1", leaseValue(live), 50*time.Millisecond)
	defer stopBeat()
	time.Sleep(500 * time.Millisecond) // "dead" misses its heartbeats

	for _, tc := range []struct {
		name  string
		c     *Client
		cmd   any
		class error
		msg   string
	}{
		{"malformed descriptor", wcl, []byte("nope"), errdefs.ErrInvalidArgument, "malformed body of Work"},
		{"no descriptor", wcl, nil, errdefs.ErrInvalidArgument, "carries no command descriptor"},
		{"other protocol", wcl, WorkCommand{Protocol: "lakehouse.v2.Work", Worker: "w1", Lease: live}, errdefs.ErrInvalidArgument, "speaks"},
		{"bad name", wcl, WorkCommand{Protocol: WorkProtocol, Worker: "a b", Lease: live}, errdefs.ErrInvalidArgument, ""},
		{"no lease", wcl, WorkCommand{Protocol: WorkProtocol, Worker: "w1"}, errdefs.ErrInvalidArgument, "names no lease"},
		{"unknown lease", wcl, WorkCommand{Protocol: WorkProtocol, Worker: "w1", Lease: "feedface"}, errdefs.ErrNotFound, "register again"},
		{"dead lease", wcl, WorkCommand{Protocol: WorkProtocol, Worker: "dead", Lease: deadLease}, errdefs.ErrFailedPrecondition, "is dead"},
		{"reader key", reader, WorkCommand{Protocol: WorkProtocol, Worker: "w1", Lease: live}, errdefs.ErrPermissionDenied, "role worker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := openRaw(t, tc.c, tc.cmd)
			defer raw.cancel()
			_, err := raw.next(tc.c)
			if !errdefs.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %s containing %q", err, errdefs.ClassName(tc.class), tc.msg)
			}
		})
	}
	if _, ok := wc.hub.Connected("w1"); ok {
		t.Fatal("a refused stream is listed")
	}

	// An admin's key may open it (and a worker key takes only the fleet's
	// calls: see TestFleetActions).
	raw := openRaw(t, admin, WorkCommand{Protocol: WorkProtocol, Worker: "w1", Lease: live})
	if m, err := raw.next(admin); err != nil || m.Type != msgOpen {
		t.Fatalf("admin: %+v, %v", m, err)
	}
	raw.cancel()

	// A worker that sends what is not a work message loses its stream.
	for _, bad := range []string{`not json`, `{"type":"hello","id":1}`} {
		raw := openRaw(t, wcl, WorkCommand{Protocol: WorkProtocol, Worker: "w1", Lease: live})
		if m, err := raw.next(wcl); err != nil || m.Type != msgOpen {
			t.Fatalf("first message = %+v, %v", m, err)
		}
		raw.Send(&flight.FlightData{AppMetadata: []byte(bad)})
		if _, err := raw.next(wcl); !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "worker w1 sent") {
			t.Fatalf("after %s: %v", bad, err)
		}
	}

	// ServeWork gives up on a key that may not take work.
	if err := ServeWork(context.Background(), reader, func() (string, string, bool) { return "w1", live, true },
		func(context.Context, json.RawMessage, func(json.RawMessage)) (json.RawMessage, error) {
			return nil, nil
		}, nil); !errdefs.Is(err, errdefs.ErrPermissionDenied) {
		t.Fatalf("ServeWork with a reader key = %v", err)
	}

	// Tasks for a worker without a stream, or under another lease, are
	// lost at once.
	for _, tc := range []struct{ worker, lease string }{{"nobody", "x"}, {"w1", live}, {"w1", "other"}} {
		start := time.Now()
		_, err := wc.hub.Assign(context.Background(), tc.worker, tc.lease, json.RawMessage(`1`), nil)
		if !errors.Is(err, fleet.ErrWorkerLost) || time.Since(start) > time.Second {
			t.Fatalf("Assign(%s, %s) = %v after %s", tc.worker, tc.lease, err, time.Since(start))
		}
	}

	// A server that is not a control plane takes no work stream.
	_, c, _ := serveTest(t, Options{Version: "v9", Role: "worker"}, DialOptions{})
	raw = openRaw(t, c, WorkCommand{Protocol: WorkProtocol, Worker: "w1", Lease: live})
	if _, err := raw.next(c); !errdefs.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "gives no work") {
		t.Fatalf("worker's data plane: %v", err)
	}
}

// TestWorkControlIntermediate: a worker fetches an intermediate the
// control plane holds with its worker key; forged, misdirected and leased
// tickets are refused, as are other keys and other tickets.
func TestWorkControlIntermediate(t *testing.T) {
	noLeaks(t)
	wc := startWorkControl(t, time.Minute)
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	src := filepath.Join(shmDir(t), "scan.arrow")
	writeIntermediate(t, src, schema, []string{`[{"x":1},{"x":2}]`, `[{"x":3}]`})
	wc.held.Register("r1", "scan", src)
	sign := func(key []byte, worker, lease string) []byte {
		tkt, err := SignIntermediate(key, IntermediateTicket{Run: "r1", Model: "scan", Worker: worker, Lease: lease,
			Expires: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return tkt
	}
	good := sign(wc.reg.TicketKey(), fleet.ControlName, "")
	dir := shmDir(t)
	dst := filepath.Join(dir, "fetched.arrow")
	ctx := context.Background()
	if err := FetchIntermediate(ctx, wc.addr, good, dst, FetchOptions{APIKey: "worker"}); err != nil {
		t.Fatal(err)
	}
	_, fp := readIntermediate(t, dst)
	_, want := readIntermediate(t, src)
	if fp != want {
		t.Fatal("the fetched intermediate differs")
	}
	if err := FetchIntermediate(ctx, wc.addr, good, filepath.Join(dir, "admin.arrow"), FetchOptions{APIKey: "admin"}); err != nil {
		t.Fatalf("admin key: %v", err)
	}

	for i, tc := range []struct {
		name   string
		ticket []byte
		key    string
		class  error
		msg    string
	}{
		{"bad signature", sign([]byte("another key"), fleet.ControlName, ""), "worker", errdefs.ErrPermissionDenied, "not signed"},
		{"another worker's", sign(wc.reg.TicketKey(), "w1", "la"), "worker", errdefs.ErrNotFound, "held by worker w1"},
		{"with a lease", sign(wc.reg.TicketKey(), fleet.ControlName, "la"), "worker", errdefs.ErrInvalidArgument, "holds no lease"},
		{"reader key", good, "reader", errdefs.ErrPermissionDenied, "role worker"},
		{"no key", good, "", errdefs.ErrUnauthenticated, "unknown API key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := FetchIntermediate(ctx, wc.addr, tc.ticket, filepath.Join(dir, fmt.Sprintf("bad%d.arrow", i)), FetchOptions{APIKey: tc.key})
			if !errdefs.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %s containing %q", err, errdefs.ClassName(tc.class), tc.msg)
			}
		})
	}

	// A worker key reads intermediates only, not queries.
	wcl := wc.dial(t, "worker")
	stream, err := wcl.fc.DoGet(wcl.callContext(ctx), &flight.Ticket{Ticket: []byte(`{"query":{"sql":"SELECT 1"}}`)})
	if err == nil {
		_, err = stream.Recv()
	}
	if err = wcl.err(err); !errdefs.Is(err, errdefs.ErrPermissionDenied) || !strings.Contains(err.Error(), "reads only intermediates") {
		t.Fatalf("worker key DoGet of a query: %v", err)
	}
}

// TestWorkBackpressure: a caller that does not take its events stalls
// the handler's emit after a bounded number of them, and nothing is lost
// once it takes them again.
func TestWorkBackpressure(t *testing.T) {
	noLeaks(t)
	wc := startWorkControl(t, time.Minute)
	wcl := wc.dial(t, "worker")
	lease := wc.join(t, wcl, "w1")
	// 900 events of 32 KiB: the queues (64 on each side) and the
	// stream's 16 MiB window hold about 650 of them.
	const n, size = 900, 32 << 10
	event := json.RawMessage(`"` + strings.Repeat("a", size) + `"`)
	var emitted atomic.Int64
	handle := func(ctx context.Context, task json.RawMessage, emit func(json.RawMessage)) (json.RawMessage, error) {
		for range n {
			emit(event)
			emitted.Add(1)
		}
		return json.RawMessage(`"done"`), nil
	}
	_, stop := runWorkServer(t, wcl, "w1", leaseValue(lease), handle, nil)
	wc.waitConnected(t, "w1", lease)

	release := make(chan struct{})
	got := 0
	resc := make(chan string, 1)
	go func() {
		res, err := wc.hub.Assign(context.Background(), "w1", lease, json.RawMessage(`1`), func(ev json.RawMessage) {
			<-release
			if len(ev) == len(event) {
				got++
			}
		})
		resc <- fmt.Sprint(string(res), err)
	}()
	time.Sleep(500 * time.Millisecond)
	if e := emitted.Load(); e >= 750 {
		t.Fatalf("%d events emitted while the caller took none", e)
	}
	close(release)
	if r := recv(t, resc, "the result"); r != `"done"<nil>` || got != n {
		t.Fatalf("Assign = %s with %d events, want %d", r, got, n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestWorkHubClose: a closed hub ends its streams and their tasks, and
// refuses new streams; the worker keeps trying.
func TestWorkHubClose(t *testing.T) {
	noLeaks(t)
	wc := startWorkControl(t, time.Minute)
	wcl := wc.dial(t, "worker")
	lease := wc.join(t, wcl, "w1")
	b := newBlocker()
	_, stop := runWorkServer(t, wcl, "w1", leaseValue(lease), b.handle, nil)
	wc.waitConnected(t, "w1", lease)
	errc := make(chan error, 1)
	go func() {
		_, err := wc.hub.Assign(context.Background(), "w1", lease, json.RawMessage(`1`), nil)
		errc <- err
	}()
	recv(t, b.started, "the task")
	wc.hub.Close()
	if err := recv(t, errc, "Assign to return"); !errors.Is(err, fleet.ErrWorkerLost) || !errdefs.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Assign = %v", err)
	}
	recv(t, b.ended, "the handler to be cancelled")
	raw := openRaw(t, wcl, WorkCommand{Protocol: WorkProtocol, Worker: "w1", Lease: lease})
	if _, err := raw.next(wcl); !errdefs.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("new stream: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatalf("ServeWork gave up: %v", err)
	}
}
