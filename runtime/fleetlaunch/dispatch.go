package fleetlaunch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"github.com/lakehouse-dev/lakehouse/runtime/scheduler"
)

// dispatcher owns the Scheduler: a goroutine keeps the workers upserted
// from Config.Workers and hands placements to the launches waiting for
// them. Each attempt of a launch is a task of its own; its inputs are
// parents the scheduler does not know, described by where they live.
type dispatcher struct {
	workers func(context.Context) []fleet.WorkerInfo
	every   time.Duration

	mu      sync.Mutex
	sched   *scheduler.Scheduler
	known   map[string]fleet.WorkerInfo // by name: the latest alive info
	lost    map[string]bool             // leases lost under a task
	envs    map[string]map[scheduler.EnvHash]bool
	running map[string]int // this launcher's tasks running, by worker
	waiters map[scheduler.TaskID]chan placed
	kick    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
}

// placed is a placement (with the worker as it was then) or why none
// will come.
type placed struct {
	p   scheduler.Placement
	w   fleet.WorkerInfo
	err error
}

func newDispatcher(workers func(context.Context) []fleet.WorkerInfo, every time.Duration) *dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	d := &dispatcher{
		workers: workers, every: every, sched: scheduler.New(scheduler.Config{}),
		known: map[string]fleet.WorkerInfo{}, lost: map[string]bool{}, envs: map[string]map[scheduler.EnvHash]bool{},
		running: map[string]int{}, waiters: map[scheduler.TaskID]chan placed{},
		kick: make(chan struct{}, 1), stop: cancel, done: make(chan struct{}),
	}
	go d.loop(ctx)
	return d
}

func (d *dispatcher) close() {
	d.stop()
	<-d.done
}

func (d *dispatcher) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *dispatcher) loop(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(d.every)
	defer t.Stop()
	for {
		d.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
	}
}

// step refreshes the workers and places what is ready.
func (d *dispatcher) step(ctx context.Context) {
	ws := d.workers(ctx)
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	alive := map[string]bool{}
	for _, w := range ws {
		if w.State != fleet.StateAlive || d.lost[w.Lease] {
			continue
		}
		alive[w.Name] = true
		if old, ok := d.known[w.Name]; ok && old.Lease != w.Lease {
			delete(d.envs, old.Lease)
		}
		d.known[w.Name] = w
		st := scheduler.WorkerState{ID: scheduler.WorkerID(w.Name), Cores: w.Cores, MemoryBytes: w.MemoryBytes,
			ShmFreeBytes: w.ShmFreeBytes, Launcher: w.Launcher, Alive: true}
		if w.Load.ShmFreeBytes > 0 {
			st.ShmFreeBytes = w.Load.ShmFreeBytes
		}
		for _, e := range w.Environments {
			st.Envs = append(st.Envs, scheduler.EnvHash(e))
		}
		for e := range d.envs[w.Lease] {
			st.Envs = append(st.Envs, e)
		}
		d.sched.UpsertWorker(st)
	}
	for name := range d.known {
		if !alive[name] {
			d.goneLocked(name, now)
		}
	}
	d.placeLocked(now)
}

// goneLocked takes a known worker out of the placements (d.mu held): it
// is forgotten once none of this launcher's tasks runs there.
func (d *dispatcher) goneLocked(name string, now time.Time) {
	w := d.known[name]
	if d.running[name] == 0 {
		d.sched.RemoveWorker(scheduler.WorkerID(name), now)
		delete(d.known, name)
		delete(d.envs, w.Lease)
		return
	}
	// Its tasks end with ErrWorkerLost; until then nothing new goes
	// there.
	st := scheduler.WorkerState{ID: scheduler.WorkerID(name), Cores: w.Cores, MemoryBytes: w.MemoryBytes, Alive: false}
	d.sched.UpsertWorker(st)
}

// loseLocked marks lease as lost (d.mu held): its worker takes nothing
// more, even before the workers are read again.
func (d *dispatcher) loseLocked(lease string, now time.Time) {
	d.lost[lease] = true
	for name, w := range d.known {
		if w.Lease == lease {
			d.goneLocked(name, now)
		}
	}
}

// placeLocked hands what the scheduler places now to the launches
// waiting for it (d.mu held). A launch's channel holds its placement, so
// the goroutine that places it need not be the one waiting for it.
func (d *dispatcher) placeLocked(now time.Time) {
	for _, p := range d.sched.Next(now) {
		ch := d.waiters[p.Task]
		if ch == nil {
			// The launch gave up meanwhile.
			d.sched.Done(scheduler.Result{Task: p.Task, Attempt: p.Attempt, Failed: true}, now)
			continue
		}
		delete(d.waiters, p.Task)
		w := d.known[string(p.Worker)]
		d.running[w.Name]++
		if p.NeedsEnv {
			if d.envs[w.Lease] == nil {
				d.envs[w.Lease] = map[scheduler.EnvHash]bool{}
			}
			d.envs[w.Lease][envOf(p)] = true
		}
		ch <- placed{p: p, w: w}
	}
	for id, err := range d.sched.Stuck() {
		if ch := d.waiters[id]; ch != nil {
			delete(d.waiters, id)
			ch <- placed{err: err}
		}
	}
}

// envOf is the environment of a placed task, which its ID ends with.
func envOf(p scheduler.Placement) scheduler.EnvHash { return taskEnv(p.Task) }

// taskEnv reads the environment hash a task ID ends with.
func taskEnv(id scheduler.TaskID) scheduler.EnvHash {
	s := string(id)
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return scheduler.EnvHash(s[i+1:])
	}
	return ""
}

func envHash(python string, reqs []string) scheduler.EnvHash {
	h := sha256.Sum256([]byte(python + "\x00" + strings.Join(reqs, "\x00")))
	return scheduler.EnvHash(hex.EncodeToString(h[:16]))
}

// submit queues a task; the placement comes on the returned channel.
// alive is how many workers can take work now. A task that fits now is
// placed at once, on the workers as last refreshed (at most Refresh
// ago), without waiting for the dispatcher's goroutine to wake up.
func (d *dispatcher) submit(t scheduler.Task) (ch chan placed, alive int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.sched.Submit(t); err != nil {
		return nil, 0, err
	}
	ch = make(chan placed, 1)
	d.waiters[t.ID] = ch
	d.placeLocked(time.Now())
	if d.waiters[t.ID] != nil {
		d.poke() // the workers as they are now may take it
	}
	return ch, len(d.known), nil
}

// abandon is a launch that stops waiting for its placement.
func (d *dispatcher) abandon(id scheduler.TaskID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.waiters, id)
}

// finish reports the end of a placed task; lost marks its worker's lease
// as gone (nothing more is placed under it).
func (d *dispatcher) finish(p placed, failed bool, outBytes int64, lost bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running[p.w.Name]--
	now := time.Now()
	d.sched.Done(scheduler.Result{Task: p.p.Task, Attempt: p.p.Attempt, Failed: failed, OutputBytes: outBytes}, now)
	if lost {
		d.loseLocked(p.w.Lease, now)
	}
	d.placeLocked(now) // what waited for the cores it freed
}

// loseLease marks a lease whose outputs could not be fetched.
func (d *dispatcher) loseLease(lease string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.loseLocked(lease, time.Now())
}

// holder is the live worker holding an output under lease, if any.
func (d *dispatcher) holder(name, lease string) (fleet.WorkerInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.known[name]
	return w, ok && w.Lease == lease && !d.lost[lease]
}

func (d *dispatcher) endRun(run string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sched.EndRun(scheduler.RunID(run))
}

var errClosed = errdefs.New(errdefs.ErrUnavailable, "the fleet launcher is closed")
