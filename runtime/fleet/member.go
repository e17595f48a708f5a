package fleet

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// DefaultInterval is how often a Member heartbeats by default.
const DefaultInterval = 2 * time.Second

// Control is the control plane as a worker reaches it: flight.Client.
type Control interface {
	// RegisterWorker joins the fleet. Errors are the Registry's; a control
	// plane that cannot be reached is errdefs.ErrUnavailable.
	RegisterWorker(ctx context.Context, r Registration) (Lease, error)
	// WorkerHeartbeat reports the worker alive under its lease; a refused lease
	// is errdefs.ErrNotFound or errdefs.ErrFailedPrecondition.
	WorkerHeartbeat(ctx context.Context, hb Heartbeat) error
}

// MemberConfig configures a Member.
type MemberConfig struct {
	// Control is the control plane (required).
	Control Control
	// Describe returns the worker's registration, read afresh before each
	// registration (required).
	Describe func(ctx context.Context) (Registration, error)
	// Load returns the worker's load for a heartbeat (nil: zero).
	Load func() Load
	// Interval is the time between heartbeats (default DefaultInterval).
	Interval time.Duration
	// OnRegister is called after each registration; again is false for
	// the first one (nil: nothing is called).
	OnRegister func(l Lease, again bool)
	// Log receives a line per failed heartbeat (nil: discarded).
	Log *slog.Logger
}

// Validate checks c and fills its defaults.
func (c *MemberConfig) Validate() error {
	if c.Control == nil || c.Describe == nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "fleet: a member needs a control plane and a description")
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Interval < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "fleet: negative heartbeat interval %s", c.Interval)
	}
	if c.Load == nil {
		c.Load = func() Load { return Load{} }
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Member is a worker's membership of a fleet: it registers, heartbeats,
// and registers again when the control plane refuses its lease.
type Member struct {
	cfg  MemberConfig
	name string

	mu    sync.Mutex
	lease Lease
}

// Join registers with the control plane and returns the member. While
// the control plane cannot be reached it retries, until ctx ends; any
// other refusal (a bad key, another version, a name taken) is returned.
func Join(ctx context.Context, cfg MemberConfig) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Member{cfg: cfg}
	if err := m.register(ctx, false); err != nil {
		return nil, err
	}
	return m, nil
}

// Lease is the member's current lease.
func (m *Member) Lease() Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lease
}

// register registers, retrying while the control plane is unavailable.
func (m *Member) register(ctx context.Context, again bool) error {
	wait := m.cfg.Interval
	for {
		reg, err := m.cfg.Describe(ctx)
		if err != nil {
			return err
		}
		l, err := m.cfg.Control.RegisterWorker(ctx, reg)
		if err == nil {
			if t := l.Timeout(); t > 0 && m.cfg.Interval*2 > t {
				return errdefs.WithHint(errdefs.ErrInvalidArgument,
					"heartbeat at most every "+(t/2).String()+" (--heartbeat), or raise the control plane's --worker-timeout",
					"heartbeats every %s are too slow for the control plane's worker timeout of %s", m.cfg.Interval, t)
			}
			m.mu.Lock()
			m.name, m.lease = reg.Name, l
			m.mu.Unlock()
			if m.cfg.OnRegister != nil {
				m.cfg.OnRegister(l, again)
			}
			return nil
		}
		if !transient(err) {
			return err
		}
		m.cfg.Log.Warn("cannot register with the control plane; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// Run heartbeats every interval until ctx ends (then it returns nil).
// When the control plane refuses the lease (it restarted, or dropped the
// worker) the member registers again; it returns the error of a
// registration refused for good.
func (m *Member) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := m.beat(ctx)
		if err == nil && failing {
			m.cfg.Log.Warn("the control plane answers heartbeats again")
		}
		wasFailing := failing
		failing = err != nil
		switch {
		case err == nil, ctx.Err() != nil:
		case errdefs.Is(err, errdefs.ErrNotFound), errdefs.Is(err, errdefs.ErrFailedPrecondition):
			m.cfg.Log.Warn("the control plane refused the heartbeat; registering again", "err", err)
			if err := m.register(ctx, true); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			failing = false
		case errdefs.Is(err, errdefs.ErrUnauthenticated), errdefs.Is(err, errdefs.ErrPermissionDenied):
			return err
		case !wasFailing:
			// The control plane is down or slow: try at each tick, and
			// say so once.
			m.cfg.Log.Warn("heartbeat failed; trying again every interval", "err", err)
		}
	}
}

// beat sends one heartbeat, waiting at most an interval (at least a
// second) for the answer.
func (m *Member) beat(ctx context.Context) error {
	m.mu.Lock()
	hb := Heartbeat{Name: m.name, Lease: m.lease.ID, Load: m.cfg.Load()}
	m.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, max(m.cfg.Interval, time.Second))
	defer cancel()
	return m.cfg.Control.WorkerHeartbeat(cctx, hb)
}

// transient reports whether a call may succeed if tried again later.
func transient(err error) bool {
	return errdefs.Is(err, errdefs.ErrUnavailable) || errdefs.Is(err, context.DeadlineExceeded)
}
