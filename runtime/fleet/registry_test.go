package fleet

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestRegistry(t *testing.T) (*Registry, *fakeClock, *[]string) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var lost []string
	r, err := NewRegistry(Config{Version: "v1", Timeout: 10 * time.Second, Forget: time.Minute, Now: clock.now,
		OnLost: func(w WorkerInfo) { lost = append(lost, w.Name) }})
	if err != nil {
		t.Fatal(err)
	}
	return r, clock, &lost
}

func reg(name, instance string) Registration {
	return Registration{Name: name, Instance: instance, Version: "v1", Addr: "127.0.0.1:9000", Cores: 2,
		MemoryBytes: 1 << 30, ShmFreeBytes: 1 << 29, Launcher: "process"}
}

func TestRegisterRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		edit  func(*Registration)
		class error
		msg   string
	}{
		{"bad name", func(r *Registration) { r.Name = "W 1" }, errdefs.ErrInvalidArgument, "invalid worker name"},
		{"no instance", func(r *Registration) { r.Instance = "" }, errdefs.ErrInvalidArgument, "instance id"},
		{"no version", func(r *Registration) { r.Version = "" }, errdefs.ErrInvalidArgument, "sent no version"},
		{"other version", func(r *Registration) { r.Version = "v2" }, errdefs.ErrFailedPrecondition,
			"worker w1 runs lakehouse v2, and the control plane runs v1"},
		{"bad addr", func(r *Registration) { r.Addr = "nowhere" }, errdefs.ErrInvalidArgument, "invalid data plane address"},
		{"unspecified addr", func(r *Registration) { r.Addr = "0.0.0.0:9000" }, errdefs.ErrInvalidArgument, "names no host"},
		{"no cores", func(r *Registration) { r.Cores = 0 }, errdefs.ErrInvalidArgument, "invalid resources"},
		{"bad launcher", func(r *Registration) { r.Launcher = "docker" }, errdefs.ErrInvalidArgument, "unknown launcher"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _, _ := newTestRegistry(t)
			rg := reg("w1", "00000001")
			tc.edit(&rg)
			_, err := r.Register(context.Background(), rg)
			if !errdefs.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.class, tc.msg)
			}
			if n := len(r.Workers(context.Background())); n != 0 {
				t.Fatalf("%d workers registered by a refused registration", n)
			}
		})
	}
}

func TestRegistryLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, clock, lost := newTestRegistry(t)
	l1, err := r.Register(ctx, reg("w1", "00000001"))
	if err != nil {
		t.Fatal(err)
	}
	if l1.Epoch != 1 || l1.Timeout() != 10*time.Second {
		t.Fatalf("lease %+v", l1)
	}

	// The same name from another instance, while alive: refused.
	_, err = r.Register(ctx, reg("w1", "00000002"))
	if !errdefs.Is(err, errdefs.ErrAlreadyExists) || !strings.Contains(err.Error(), "--name") {
		t.Fatalf("second w1: %v", err)
	}

	// Heartbeats keep it alive past the timeout.
	for range 3 {
		clock.add(6 * time.Second)
		if err := r.Heartbeat(ctx, Heartbeat{Name: "w1", Lease: l1.ID, Load: Load{Running: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	ws := r.Workers(ctx)
	if len(ws) != 1 || ws[0].State != StateAlive || ws[0].Load.Running != 2 || ws[0].Epoch != 1 {
		t.Fatalf("workers %+v", ws)
	}

	// Silent past the timeout: lost, its lease dead, reported once.
	clock.add(11 * time.Second)
	if ws := r.Workers(ctx); ws[0].State != StateLost || ws[0].HeartbeatAgeMillis != 11000 {
		t.Fatalf("after the timeout: %+v", ws)
	}
	if len(r.Alive(ctx)) != 0 {
		t.Fatal("a lost worker is alive")
	}
	err = r.Heartbeat(ctx, Heartbeat{Name: "w1", Lease: l1.ID})
	if !errdefs.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "no heartbeat for 10s") {
		t.Fatalf("late heartbeat: %v", err)
	}
	if strings.Join(*lost, ",") != "w1" {
		t.Fatalf("lost reported %v", *lost)
	}

	// Another instance may take a lost name; the old lease stays dead.
	l2, err := r.Register(ctx, reg("w1", "00000002"))
	if err != nil {
		t.Fatal(err)
	}
	if l2.Epoch != 2 || l2.ID == l1.ID {
		t.Fatalf("second lease %+v", l2)
	}
	if err := r.Check("w1", l1.ID); !errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("old lease: %v", err)
	}
	if err := r.Check("w1", l2.ID); err != nil {
		t.Fatal(err)
	}

	// The same instance restarting replaces its live registration.
	l3, err := r.Register(ctx, reg("w1", "00000002"))
	if err != nil {
		t.Fatal(err)
	}
	err = r.Check("w1", l2.ID)
	if !errdefs.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("replaced lease: %v", err)
	}
	if l3.Epoch != 3 {
		t.Fatalf("third lease %+v", l3)
	}

	// A lease this registry never gave: not found.
	if err := r.Heartbeat(ctx, Heartbeat{Name: "w1", Lease: "ffffffff"}); !errdefs.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown lease: %v", err)
	}
	if err := r.Heartbeat(ctx, Heartbeat{Name: "w9", Lease: l3.ID}); !errdefs.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown worker: %v", err)
	}

	// Lost workers are forgotten after Forget.
	clock.add(11 * time.Second)
	r.Workers(ctx)
	clock.add(2 * time.Minute)
	if ws := r.Workers(ctx); len(ws) != 0 {
		t.Fatalf("not forgotten: %+v", ws)
	}
}

// fakeControl is a control plane in memory for Member: a Registry that
// the test may restart or take down.
type fakeControl struct {
	mu   sync.Mutex
	r    *Registry
	down bool
}

func (f *fakeControl) registry() (*Registry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errdefs.New(errdefs.ErrUnavailable, "down")
	}
	return f.r, nil
}

func (f *fakeControl) RegisterWorker(ctx context.Context, rg Registration) (Lease, error) {
	r, err := f.registry()
	if err != nil {
		return Lease{}, err
	}
	return r.Register(ctx, rg)
}

func (f *fakeControl) WorkerHeartbeat(ctx context.Context, hb Heartbeat) error {
	r, err := f.registry()
	if err != nil {
		return err
	}
	return r.Heartbeat(ctx, hb)
}

func TestMemberRegistersAgain(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	newReg := func() *Registry {
		r, err := NewRegistry(Config{Version: "v1", Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ctl := &fakeControl{r: newReg()}
	registered := make(chan Lease, 8)
	m, err := Join(ctx, MemberConfig{Control: ctl, Interval: 20 * time.Millisecond,
		Describe:   func(context.Context) (Registration, error) { return reg("w1", "00000001"), nil },
		OnRegister: func(l Lease, again bool) { registered <- l }})
	if err != nil {
		t.Fatal(err)
	}
	first := <-registered
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	// The control plane goes away and comes back with an empty registry.
	ctl.mu.Lock()
	ctl.down = true
	ctl.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	ctl.mu.Lock()
	ctl.down, ctl.r = false, newReg()
	ctl.mu.Unlock()
	select {
	case l := <-registered:
		if l.ID == first.ID || l.Control == first.Control {
			t.Fatalf("registered again with the old lease %+v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the member did not register again")
	}
	if ws := ctl.r.Alive(ctx); len(ws) != 1 || ws[0].Name != "w1" {
		t.Fatalf("alive %+v", ws)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMemberRefusals(t *testing.T) {
	t.Parallel()
	r, err := NewRegistry(Config{Version: "v1", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A heartbeat too slow for the timeout is refused before it matters.
	_, err = Join(ctx, MemberConfig{Control: &fakeControl{r: r}, Interval: time.Second,
		Describe: func(context.Context) (Registration, error) { return reg("w1", "00000001"), nil }})
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "--heartbeat") {
		t.Fatalf("slow heartbeat: %v", err)
	}
	// Another version is returned at once, not retried.
	_, err = Join(ctx, MemberConfig{Control: &fakeControl{r: r}, Interval: 10 * time.Millisecond,
		Describe: func(context.Context) (Registration, error) {
			rg := reg("w2", "00000002")
			rg.Version = "v0"
			return rg, nil
		}})
	if !errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("other version: %v", err)
	}
	// An unreachable control plane is retried until the context ends.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = Join(cctx, MemberConfig{Control: &fakeControl{r: r, down: true}, Interval: 10 * time.Millisecond,
		Describe: func(context.Context) (Registration, error) { return reg("w3", "00000003"), nil }})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestWorkdir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := OpenWorkdir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWorkdir(dir); !errdefs.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("second open: %v", err)
	}
	id := w.Instance
	w.Close()
	w, err = OpenWorkdir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Instance != id {
		t.Fatalf("instance %s, then %s", id, w.Instance)
	}
	if m := Probe(dir); m.Cores <= 0 || m.ShmFreeBytes <= 0 {
		t.Fatalf("probe %+v", m)
	}
}

// TestOnRegister: the hook sees each registration, and may call the
// registry (it runs without the lock).
func TestOnRegister(t *testing.T) {
	t.Parallel()
	var r *Registry
	var seen []string
	r, err := NewRegistry(Config{Version: "v1", OnRegister: func(w WorkerInfo) {
		seen = append(seen, w.Name+"/"+strconv.FormatUint(w.Epoch, 10))
		r.Workers(context.Background())
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"w1", "w2", "w1"} {
		if _, err := r.Register(context.Background(), reg(name, "00000001")); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(seen, ","); got != "w1/1,w2/1,w1/2" {
		t.Fatalf("registrations seen: %s", got)
	}
}
