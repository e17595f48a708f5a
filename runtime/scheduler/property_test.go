package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// harness drives a Scheduler with random workers, DAGs, results, worker
// losses and rejoins, and checks every placement against its own model:
// no overcommit of cores, memory or /dev/shm, parents before children,
// results taken once; at the end, with every worker back, every task that
// fits one completes.
type harness struct {
	t   *testing.T
	rng *rand.Rand
	s   *Scheduler
	now time.Time

	workers map[WorkerID]WorkerState // as last upserted
	gone    map[WorkerID]bool
	running map[TaskID]Placement
	done    map[TaskID]bool
	tasks   map[TaskID]Task
	runs    map[RunID][]TaskID
	ended   map[RunID]bool
	// shmUsed is the bytes routed to each worker since its last upsert.
	shmUsed map[WorkerID]int64
	nextID  int
	stats   harnessStats
}

// harnessStats shows that the random runs reach every path.
type harnessStats struct {
	placed, local, fetches, retried, held, done int
}

func newHarness(t *testing.T, seed uint64) *harness {
	h := &harness{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		workers: map[WorkerID]WorkerState{}, gone: map[WorkerID]bool{}, running: map[TaskID]Placement{},
		done: map[TaskID]bool{}, tasks: map[TaskID]Task{}, runs: map[RunID][]TaskID{}, ended: map[RunID]bool{},
		shmUsed: map[WorkerID]int64{}, now: t0}
	cfg := Config{Now: func() time.Time { return h.now }, HoldAfter: time.Duration(1+h.rng.IntN(60)) * time.Second,
		AgingStep: time.Duration(1+h.rng.IntN(20)) * time.Second}
	h.s = New(cfg)
	for i := range 1 + h.rng.IntN(5) {
		w := WorkerState{ID: WorkerID(fmt.Sprint("w", i)), Cores: 1 + h.rng.IntN(8), MemoryBytes: int64(1+h.rng.IntN(16)) * gib,
			ShmFreeBytes: int64(2+h.rng.IntN(6)) * gib, Alive: true}
		for e := range 3 {
			if h.rng.IntN(2) == 0 {
				w.Envs = append(w.Envs, EnvHash(fmt.Sprint("env", e)))
			}
		}
		h.upsert(w)
	}
	return h
}

func (h *harness) upsert(w WorkerState) {
	if err := h.s.UpsertWorker(w); err != nil {
		h.t.Fatal(err)
	}
	h.workers[w.ID] = w
	h.shmUsed[w.ID] = 0
	delete(h.gone, w.ID)
}

func (h *harness) randomTask(run RunID, prev []TaskID) Task {
	h.nextID++
	t := Task{ID: TaskID(fmt.Sprint("t", h.nextID)), Kind: KindFunction, Run: run, Priority: h.rng.IntN(11),
		Reserve: Resources{MilliCPUs: int64(h.rng.IntN(4000)), MemoryBytes: int64(h.rng.IntN(8)) * gib / 2}}
	if run == "" {
		t.Kind = KindQuery
		return t
	}
	if h.rng.IntN(2) == 0 {
		t.Env = EnvHash(fmt.Sprint("env", h.rng.IntN(4)))
	}
	for _, p := range prev {
		if h.rng.IntN(4) == 0 {
			t.Parents = append(t.Parents, Input{Task: p})
		}
	}
	return t
}

func (h *harness) submitRun() {
	run := RunID(fmt.Sprint("r", h.nextID))
	var ids []TaskID
	for range 1 + h.rng.IntN(12) {
		t := h.randomTask(run, ids)
		if err := h.s.Submit(t); err != nil {
			continue // larger than every worker: refused, tested elsewhere
		}
		h.tasks[t.ID] = t
		ids = append(ids, t.ID)
	}
	h.runs[run] = ids
}

func (h *harness) next() {
	ps := h.s.Next(h.now)
	if h.s.hold != nil {
		h.stats.held++
	}
	for _, p := range ps {
		h.stats.placed++
		h.stats.fetches += len(p.Fetches)
		if p.Reason == ReasonLocal {
			h.stats.local++
		}
		task, ok := h.tasks[p.Task]
		if !ok {
			h.t.Fatalf("placed unknown task %s", p.Task)
		}
		if _, ok := h.running[p.Task]; ok || h.done[p.Task] {
			h.t.Fatalf("placed %s twice", p.Task)
		}
		for _, in := range task.Parents {
			if !h.done[in.Task] {
				h.t.Fatalf("placed %s before its parent %s is done", p.Task, in.Task)
			}
		}
		w, ok := h.workers[p.Worker]
		if !ok || h.gone[p.Worker] || !w.Alive {
			h.t.Fatalf("placed %s on worker %s that is gone or not alive", p.Task, p.Worker)
		}
		h.running[p.Task] = p
		var used Resources
		for _, r := range h.running {
			if r.Worker == p.Worker {
				used = used.add(r.Reserve)
			}
		}
		if !used.fits(w.capacity()) {
			h.t.Fatalf("worker %s overcommitted: %+v reserved of %+v", p.Worker, used, w.capacity())
		}
		for _, f := range p.Fetches {
			h.shmUsed[p.Worker] += f.SizeBytes
		}
		if h.shmUsed[p.Worker] > w.ShmFreeBytes {
			h.t.Fatalf("worker %s gets %d bytes of inputs in a /dev/shm of %d free", p.Worker, h.shmUsed[p.Worker], w.ShmFreeBytes)
		}
	}
}

func (h *harness) finishOne() {
	ids := make([]TaskID, 0, len(h.running))
	for id := range h.running {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	id := ids[h.rng.IntN(len(ids))]
	p := h.running[id]
	delete(h.running, id)
	failed := h.rng.IntN(40) == 0
	if err := h.s.Done(Result{Task: id, Attempt: p.Attempt, Failed: failed, OutputBytes: int64(h.rng.IntN(64 << 20))}, h.now); err != nil {
		h.t.Fatalf("Done(%s): %v", id, err)
	}
	if err := h.s.Done(Result{Task: id, Attempt: p.Attempt}, h.now); err == nil {
		h.t.Fatalf("a second result of %s was taken", id)
	}
	if failed {
		if run := h.tasks[id].Run; run != "" {
			h.endRun(run)
		}
		delete(h.tasks, id)
		return
	}
	h.done[id] = true
	h.stats.done++
}

func (h *harness) endRun(run RunID) {
	h.s.EndRun(run)
	h.ended[run] = true
	for _, id := range h.runs[run] {
		if _, ok := h.running[id]; !ok {
			delete(h.tasks, id)
		}
	}
}

func (h *harness) removeWorker() {
	ids := make([]WorkerID, 0, len(h.workers))
	for id := range h.workers {
		if !h.gone[id] {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	id := ids[h.rng.IntN(len(ids))]
	again := h.s.RemoveWorker(id, h.now)
	h.gone[id] = true
	for tid, p := range h.running {
		if p.Worker == id {
			if run := h.tasks[tid].Run; run != "" && h.ended[run] {
				// A task of an ended run is forgotten, not run again.
				if slices.Contains(again, tid) {
					h.t.Fatalf("RemoveWorker(%s) runs %s of the ended run %s again", id, tid, run)
				}
				delete(h.running, tid)
				delete(h.tasks, tid)
				continue
			}
			if !slices.Contains(again, tid) {
				h.t.Fatalf("RemoveWorker(%s) did not return its running task %s", id, tid)
			}
			delete(h.running, tid)
		}
	}
	h.stats.retried += len(again)
	for _, tid := range again {
		delete(h.done, tid) // its output was lost: it runs again
	}
}

func (h *harness) step() {
	h.now = h.now.Add(time.Duration(h.rng.IntN(20_000)) * time.Millisecond)
	switch r := h.rng.IntN(100); {
	case r < 10:
		h.submitRun()
	case r < 15:
		t := h.randomTask("", nil)
		if h.s.Submit(t) == nil {
			h.tasks[t.ID] = t
		}
	case r < 70:
		h.finishOne()
	case r < 73:
		h.removeWorker()
	case r < 78:
		// A heartbeat: a gone worker rejoins, or a live one flips Alive.
		ids := make([]WorkerID, 0, len(h.workers))
		for id := range h.workers {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		id := ids[h.rng.IntN(len(ids))]
		w := h.workers[id]
		if h.gone[id] {
			w.Alive = true
		} else {
			w.Alive = h.rng.IntN(3) > 0
		}
		h.upsertReporting(w)
	}
	h.next()
}

// upsertReporting upserts w with the running tasks the model has there.
func (h *harness) upsertReporting(w WorkerState) {
	w.Running = nil
	for id, p := range h.running {
		if p.Worker == w.ID {
			w.Running = append(w.Running, RunningTask{ID: id, Reserved: p.Reserve})
		}
	}
	h.upsert(w)
}

// heartbeats upserts every worker, alive.
func (h *harness) heartbeats() {
	ids := make([]WorkerID, 0, len(h.workers))
	for id := range h.workers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		w := h.workers[id]
		w.Alive = true
		h.upsertReporting(w)
	}
}

// drain brings every worker back and runs everything to the end.
func (h *harness) drain() {
	h.heartbeats()
	for i := 0; len(h.running) > 0 || i == 0; i++ {
		h.next()
		for len(h.running) > 0 {
			h.now = h.now.Add(time.Second)
			h.finishOne()
			h.heartbeats()
			h.next()
		}
		if i > 100_000 {
			h.t.Fatal("drain does not end")
		}
	}
	stuck := h.s.Stuck()
	for id, task := range h.tasks {
		if h.done[id] || (task.Run != "" && h.ended[task.Run]) {
			continue
		}
		if h.stuck(id, stuck) {
			continue // it, or a task it reads, fits no worker left
		}
		state := "forgotten"
		if st := h.s.tasks[id]; st != nil {
			state = st.stateName()
		}
		h.t.Fatalf("task %s (%+v) never completed; scheduler state %s", id, task.Reserve, state)
	}
}

func (h *harness) stuck(id TaskID, stuck map[TaskID]error) bool {
	if stuck[id] != nil {
		return true
	}
	for _, p := range h.tasks[id].Parents {
		if h.stuck(p.Task, stuck) {
			return true
		}
	}
	return false
}

func runHarness(t *testing.T, seed uint64) harnessStats {
	defer func() {
		if t.Failed() {
			t.Logf("seed %d", seed)
		}
	}()
	h := newHarness(t, seed)
	for range 300 {
		h.step()
		if t.Failed() {
			return h.stats
		}
	}
	h.drain()
	return h.stats
}

func TestRandomized(t *testing.T) {
	t.Parallel()
	var total harnessStats
	for seed := range uint64(300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			st := runHarness(t, seed)
			total.placed += st.placed
			total.local += st.local
			total.fetches += st.fetches
			total.retried += st.retried
			total.held += st.held
			total.done += st.done
		})
	}
	t.Logf("%+v", total)
	if total.local == 0 || total.fetches == 0 || total.retried == 0 || total.held == 0 || total.done < total.placed/2 {
		t.Fatalf("the random runs miss a path: %+v", total)
	}
}

func FuzzScheduler(f *testing.F) {
	for _, s := range []uint64{1, 2, 42, 1 << 40} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { runHarness(t, seed) })
}
