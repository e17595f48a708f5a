package scheduler

import (
	"slices"
	"time"
)

// The ready queue is ordered by effective priority: a task's base (its
// run's priority, or Config.QueryPriority for a query) plus one level per
// AgingStep it has waited. Every task ages at the same rate, so the order
// of two tasks never changes while they wait: the key base*AgingStep -
// readyAt sorts them once, when they become ready.

func (s *Scheduler) base(t *task) int64 {
	if s.cfg.FIFO {
		return 0
	}
	if t.Kind == KindQuery {
		return int64(s.cfg.QueryPriority)
	}
	if t.Priority == 0 {
		return DefaultPriority
	}
	return int64(t.Priority)
}

func (s *Scheduler) makeReady(t *task, now time.Time) {
	t.state, t.readyAt = stateReady, now
	t.key = s.base(t)*int64(s.cfg.AgingStep) - now.UnixNano()
	s.ready.push(t, s.base(t))
}

func (s *Scheduler) unready(t *task) {
	s.ready.remove(t, s.base(t))
	t.state = statePending
	if s.hold != nil && s.hold.task == t {
		s.releaseHold()
	}
}

func (s *Scheduler) releaseHold() {
	s.hold.worker.held = false
	s.hold = nil
}

// Next places the ready tasks that fit, in priority order, and returns
// the placements. A task that fits no worker now stays ready, and smaller
// tasks after it may take what is free; once the first such task has
// waited Config.HoldAfter while others were placed past it, a worker
// large enough for it is held: no other task is placed there until it fits.
func (s *Scheduler) Next(now time.Time) []Placement {
	if s.ready.n == 0 {
		return nil
	}
	if h := s.hold; h != nil && (h.task.state != stateReady || !h.worker.st.Alive || !h.task.reserve.fits(h.worker.cap)) {
		s.releaseHold()
	}
	bound := s.freeBound()
	var out []Placement
	// first is the first task that did not fit; backfilled is whether a
	// task after it was placed.
	var first *task
	backfilled := false
	var failed []Resources // reservations that fit no worker's free resources
	everyTaskNeedsCPU := s.cfg.DefaultFunction.MilliCPUs > 0 && s.cfg.DefaultQuery.MilliCPUs > 0
	tried := 0 // tasks tried after the first that did not fit
	s.ready.filter(func(t *task) (keep, stop bool) {
		held := s.hold != nil && s.hold.task == t
		if first != nil && !held {
			tried++
		}
		switch {
		case tried > s.cfg.BackfillDepth:
			stop = true
		case bound.MilliCPUs <= 0 && everyTaskNeedsCPU:
			// No CPU free anywhere, and every task reserves some.
			stop = true
		case !held && slices.ContainsFunc(failed, func(f Resources) bool { return f.fits(t.reserve) }):
			// A task needing no more than this one fit nowhere, and
			// placements only take resources.
		default:
			p, ok, nowhere := s.place(t, now, &bound)
			if ok {
				out = append(out, p)
				backfilled = first != nil
				return false, false
			}
			if nowhere && !held {
				// Keep the smallest reservations that failed.
				failed = slices.DeleteFunc(failed, func(f Resources) bool { return t.reserve.fits(f) })
				failed = append(failed, t.reserve)
			}
		}
		if first == nil {
			first = t
		}
		return true, stop
	})
	if backfilled {
		s.maybeHold(first, now)
	}
	return out
}

// freeBound is, per resource, the most any live worker has free: a task
// that needs more fits nowhere. Placements only lower it.
func (s *Scheduler) freeBound() Resources {
	var b Resources
	for _, w := range s.order {
		if w.st.Alive {
			f := w.free()
			b.MilliCPUs, b.MemoryBytes = max(b.MilliCPUs, f.MilliCPUs), max(b.MemoryBytes, f.MemoryBytes)
		}
	}
	return b
}

// input is a parent output as placement sees it.
type input struct {
	id      TaskID
	from    WorkerID
	bytes   int64
	holders []*worker // its worker and the workers it was copied to
	known   *task
}

func (s *Scheduler) inputs(t *task) []input {
	if len(t.Parents) == 0 {
		return nil
	}
	ins := make([]input, 0, len(t.Parents))
	for _, p := range t.Parents {
		in := input{id: p.Task, from: p.Worker, bytes: p.SizeBytes}
		if i := slices.IndexFunc(t.parents, func(k *task) bool { return k.ID == p.Task }); i >= 0 {
			k := t.parents[i]
			in.known, in.from, in.bytes = k, k.worker.st.ID, k.outBytes
			in.holders = append([]*worker{k.worker}, k.copiedTo...)
		} else if w := s.workers[p.Worker]; w != nil {
			in.holders = []*worker{w}
		}
		if in.from == "" {
			continue // in object storage: local to no worker
		}
		ins = append(ins, in)
	}
	return ins
}

// candidate is a worker that can take a task now.
type candidate struct {
	w     *worker
	local int64 // bytes of inputs already there
	env   bool
	load  float64
}

// better reports whether a goes before b: more input bytes already there,
// then the environment installed, then the least loaded, then by name.
func (a candidate) better(b candidate) bool {
	switch {
	case a.local != b.local:
		return a.local > b.local
	case a.env != b.env:
		return a.env
	case a.load != b.load:
		return a.load < b.load
	case len(a.w.running) != len(b.w.running):
		return len(a.w.running) < len(b.w.running)
	}
	return a.w.st.ID < b.w.st.ID
}

// place finds t the best worker and assigns it. When it finds none,
// nowhere tells whether t's reservation fits no worker's free resources
// (rather than no worker's /dev/shm).
func (s *Scheduler) place(t *task, now time.Time, bound *Resources) (p Placement, ok, nowhere bool) {
	if !t.reserve.fits(*bound) {
		return Placement{}, false, true
	}
	ins := s.inputs(t)
	var total int64
	var local map[*worker]int64
	if len(ins) > 0 {
		local = make(map[*worker]int64, len(ins))
	}
	for _, in := range ins {
		total += in.bytes
		for _, h := range in.holders {
			// One more byte per input, so that empty outputs count too.
			local[h] += in.bytes + 1
		}
	}
	nowhere = true
	fits := func(w *worker) bool {
		if !w.st.Alive || (w.held && (s.hold == nil || s.hold.task != t)) || !t.reserve.fits(w.free()) {
			return false
		}
		nowhere = false
		fetch := total
		for _, in := range ins {
			if slices.Contains(in.holders, w) {
				fetch -= in.bytes
			}
		}
		return fetch <= w.st.ShmFreeBytes-w.shmPending
	}
	cand := func(w *worker) candidate {
		c := candidate{w: w, load: w.load()}
		if !s.cfg.FIFO {
			c.local, c.env = local[w], t.Env != "" && w.envs[t.Env]
		}
		return c
	}
	var best candidate
	consider := func(w *worker) {
		if !fits(w) {
			return
		}
		if c := cand(w); best.w == nil || c.better(best) {
			best = c
		}
	}
	reason := ReasonBaselineLL
	if !s.cfg.FIFO {
		reason = ReasonLocal
		for w := range local {
			consider(w)
		}
		if best.w == nil && t.Env != "" {
			reason = ReasonEnv
			for w := range s.envs[t.Env] {
				consider(w)
			}
		}
		if best.w == nil {
			reason = ReasonLeastLoad
		}
	}
	if best.w == nil {
		var b Resources
		for _, w := range s.order {
			consider(w)
			if w.st.Alive {
				f := w.free()
				b.MilliCPUs, b.MemoryBytes = max(b.MilliCPUs, f.MilliCPUs), max(b.MemoryBytes, f.MemoryBytes)
			}
		}
		if best.w == nil {
			*bound = b
			return Placement{}, false, nowhere
		}
	}
	return s.assign(t, best.w, ins, reason, now), true, false
}

func (s *Scheduler) assign(t *task, w *worker, ins []input, reason Reason, now time.Time) Placement {
	if s.hold != nil && s.hold.task == t {
		s.releaseHold()
	}
	t.state, t.worker = stateRunning, w
	t.attempt++
	w.running[t.ID] = t
	w.placed = w.placed.add(t.reserve)
	p := Placement{Task: t.ID, Kind: t.Kind, Run: t.Run, Worker: w.st.ID, Attempt: t.attempt,
		Reserve: t.reserve, Reason: reason, Waited: now.Sub(t.readyAt)}
	for _, in := range ins {
		if slices.Contains(in.holders, w) {
			continue
		}
		p.Fetches = append(p.Fetches, Fetch{Parent: in.id, From: in.from, SizeBytes: in.bytes})
		w.shmPending += in.bytes
		if in.known != nil {
			in.known.copiedTo = append(in.known.copiedTo, w)
		}
	}
	if t.Env != "" && !w.envs[t.Env] {
		p.NeedsEnv = true
		s.addEnv(w, t.Env)
	}
	return p
}

// maybeHold holds a worker for t, the first task in priority order that
// fit nowhere while tasks after it took what was free (backfill), once it
// has waited HoldAfter and nothing is held yet: the live worker large
// enough for it with the most free.
func (s *Scheduler) maybeHold(t *task, now time.Time) {
	if s.cfg.FIFO || s.hold != nil || now.Sub(t.readyAt) < s.cfg.HoldAfter {
		return
	}
	var pick *worker
	for _, w := range s.order {
		if !w.st.Alive || !t.reserve.fits(w.cap) {
			continue
		}
		if pick == nil || moreFree(w.free(), pick.free()) {
			pick = w
		}
	}
	if pick != nil {
		pick.held = true
		s.hold = &hold{task: t, worker: pick}
	}
}

func moreFree(a, b Resources) bool {
	if a.MilliCPUs != b.MilliCPUs {
		return a.MilliCPUs > b.MilliCPUs
	}
	return a.MemoryBytes > b.MemoryBytes
}
