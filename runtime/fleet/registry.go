package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Defaults of Config.
const (
	DefaultTimeout = 10 * time.Second
	DefaultForget  = time.Hour
)

// Config configures a Registry.
type Config struct {
	// Version is the control plane's; a worker of another version is
	// refused (required).
	Version string
	// Timeout is how long a worker may go without a heartbeat before it
	// is lost (default DefaultTimeout).
	Timeout time.Duration
	// Forget is how long a lost worker stays listed (default
	// DefaultForget).
	Forget time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnLost is called, without the registry's lock, with each worker
	// found lost; OnRegister with each registration (nil: nothing is
	// called).
	OnLost, OnRegister func(WorkerInfo)
	// Log receives a line per registration and loss (nil: discarded).
	Log *slog.Logger
	// TicketKey signs the tickets of placed queries and is handed to
	// workers in their leases (default: 32 random bytes).
	TicketKey []byte
}

// Validate checks c and fills its defaults.
func (c *Config) Validate() error {
	if c.Version == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "fleet: the control plane's version is empty")
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "fleet: negative worker timeout %s", c.Timeout)
	}
	if c.Forget == 0 {
		c.Forget = DefaultForget
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if len(c.TicketKey) == 0 {
		c.TicketKey = make([]byte, 32)
		rand.Read(c.TicketKey)
	}
	return nil
}

// Registry is the control plane's list of workers. It is safe for
// concurrent use.
type Registry struct {
	cfg Config
	// boot identifies this registry: a lease of another (a control plane
	// before its restart) is unknown here.
	boot string

	mu      sync.Mutex
	workers map[string]*entry
}

type entry struct {
	reg        Registration
	lease      Lease
	state      State
	registered time.Time
	lastBeat   time.Time
	lostAt     time.Time
	load       Load
	// why says why the lease died (lost or replaced).
	why string
	// dead are the name's earlier leases on this registry and why each
	// died (the last maxDead).
	dead map[string]string
}

// maxDead bounds the earlier leases a name remembers.
const maxDead = 16

// NewRegistry returns an empty registry.
func NewRegistry(cfg Config) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Registry{cfg: cfg, boot: newID(), workers: map[string]*entry{}}, nil
}

// Timeout is how long a worker may go without a heartbeat.
func (r *Registry) Timeout() time.Duration { return r.cfg.Timeout }

// TicketKey is the key the tickets of placed queries are signed with.
func (r *Registry) TicketKey() []byte { return r.cfg.TicketKey }

// Register admits a worker and returns its lease. It returns
// errdefs.ErrInvalidArgument for a malformed registration,
// errdefs.ErrFailedPrecondition for a worker of another version, and
// errdefs.ErrAlreadyExists when another instance holds the name alive.
func (r *Registry) Register(ctx context.Context, reg Registration) (Lease, error) {
	if err := reg.Validate(); err != nil {
		return Lease{}, err
	}
	if reg.Version != r.cfg.Version {
		return Lease{}, errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"run the same lakehouse version on the workers and the control plane",
			"worker %s runs lakehouse %s, and the control plane runs %s", reg.Name, reg.Version, r.cfg.Version)
	}
	r.reportLost(r.expire())
	info, err := r.admit(reg)
	if err != nil {
		return Lease{}, err
	}
	r.cfg.Log.Info("worker registered", "worker", reg.Name, "addr", reg.Addr, "epoch", info.Epoch)
	if r.cfg.OnRegister != nil {
		r.cfg.OnRegister(info)
	}
	return r.leaseOf(info), nil
}

// leaseOf is the lease of a worker as the registry lists it.
func (r *Registry) leaseOf(w WorkerInfo) Lease {
	return Lease{ID: w.Lease, Epoch: w.Epoch, Control: r.boot, TimeoutMillis: r.cfg.Timeout.Milliseconds(),
		TicketKey: hex.EncodeToString(r.cfg.TicketKey)}
}

// admit enters a valid registration of this version.
func (r *Registry) admit(reg Registration) (WorkerInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	var epoch uint64
	dead := map[string]string{}
	if old := r.workers[reg.Name]; old != nil {
		if old.state == StateAlive && old.reg.Instance != reg.Instance {
			return WorkerInfo{}, errdefs.WithHint(errdefs.ErrAlreadyExists,
				"give this worker another name with --name, or stop the other one",
				"a worker named %s is registered already, from %s (last heartbeat %s ago)",
				reg.Name, old.reg.Addr, now.Sub(old.lastBeat).Round(time.Millisecond))
		}
		if old.state == StateAlive {
			old.why = "replaced by a newer registration of the same worker"
		}
		epoch = old.lease.Epoch
		if len(old.dead) < maxDead {
			dead = old.dead
		}
		dead[old.lease.ID] = old.why
	}
	e := &entry{reg: reg, lease: Lease{ID: newID(), Epoch: epoch + 1}, state: StateAlive, registered: now, lastBeat: now, dead: dead}
	r.workers[reg.Name] = e
	return e.info(now), nil
}

// Heartbeat records that a worker is alive and its load. It returns
// errdefs.ErrNotFound when the registry does not know the lease (the
// control plane restarted, or forgot the worker), and
// errdefs.ErrFailedPrecondition when the lease is dead (the worker was
// lost, or replaced); the worker registers again in both cases.
func (r *Registry) Heartbeat(ctx context.Context, hb Heartbeat) error {
	lost := r.expire()
	defer r.reportLost(lost)
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.live(hb.Name, hb.Lease)
	if err != nil {
		return err
	}
	e.lastBeat = r.cfg.Now()
	e.load = hb.Load
	return nil
}

// Check returns nil if lease is the live lease of worker name, else the
// error Heartbeat would return.
func (r *Registry) Check(name, lease string) error {
	lost := r.expire()
	defer r.reportLost(lost)
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.live(name, lease)
	return err
}

// live finds the live entry of a lease. Called with r.mu held.
func (r *Registry) live(name, lease string) (*entry, error) {
	e := r.workers[name]
	if e != nil && e.lease.ID == lease && e.state == StateAlive {
		return e, nil
	}
	if e != nil && e.lease.ID == lease {
		return nil, deadLease(name, lease, e.why)
	}
	if e != nil {
		if why, ok := e.dead[lease]; ok {
			return nil, deadLease(name, lease, why)
		}
	}
	return nil, errdefs.WithHint(errdefs.ErrNotFound, "register again",
		"worker %s is not registered with this control plane under lease %s (it restarted, or forgot the worker)", name, short(lease))
}

func deadLease(name, lease, why string) error {
	return errdefs.WithHint(errdefs.ErrFailedPrecondition, "register again",
		"lease %s of worker %s is dead: %s", short(lease), name, why)
}

// Workers lists the workers, alive and lost, by name.
func (r *Registry) Workers(ctx context.Context) []WorkerInfo {
	lost := r.expire()
	defer r.reportLost(lost)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	out := make([]WorkerInfo, 0, len(r.workers))
	for _, e := range r.workers {
		out = append(out, e.info(now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Alive lists the alive workers, by name.
func (r *Registry) Alive(ctx context.Context) []WorkerInfo {
	all := r.Workers(ctx)
	out := all[:0]
	for _, w := range all {
		if w.State == StateAlive {
			out = append(out, w)
		}
	}
	return out
}

func (e *entry) info(now time.Time) WorkerInfo {
	return WorkerInfo{Registration: e.reg, State: e.state, Lease: e.lease.ID, Epoch: e.lease.Epoch,
		Registered: e.registered, LastHeartbeat: e.lastBeat, HeartbeatAgeMillis: now.Sub(e.lastBeat).Milliseconds(), Load: e.load}
}

// Run marks workers lost as their timeouts pass, until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(max(r.cfg.Timeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.reportLost(r.expire())
		}
	}
}

// expire marks the workers whose heartbeats stopped lost, forgets those
// lost for Forget, and returns the newly lost.
func (r *Registry) expire() []WorkerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	var lost []WorkerInfo
	for name, e := range r.workers {
		switch {
		case e.state == StateAlive && now.Sub(e.lastBeat) > r.cfg.Timeout:
			e.state, e.lostAt = StateLost, now
			e.why = "lost: no heartbeat for " + r.cfg.Timeout.String()
			lost = append(lost, e.info(now))
			r.cfg.Log.Info("worker lost", "worker", name, "addr", e.reg.Addr, "epoch", e.lease.Epoch)
		case e.state == StateLost && now.Sub(e.lostAt) > r.cfg.Forget:
			delete(r.workers, name)
		}
	}
	return lost
}

func (r *Registry) reportLost(lost []WorkerInfo) {
	if r.cfg.OnLost == nil {
		return
	}
	for _, w := range lost {
		r.cfg.OnLost(w)
	}
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// short is the first 8 characters of an id, for messages.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
