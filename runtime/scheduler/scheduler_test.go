package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

const gib = 1 << 30

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func node(id string, cores int, envs ...EnvHash) WorkerState {
	return WorkerState{ID: WorkerID(id), Cores: cores, MemoryBytes: int64(cores) * 4 * gib,
		ShmFreeBytes: 64 * gib, Launcher: "process", Envs: envs, Alive: true}
}

func fn(id, run string, parents ...string) Task {
	t := Task{ID: TaskID(id), Kind: KindFunction, Run: RunID(run), Reserve: Resources{MilliCPUs: 1000, MemoryBytes: gib}}
	for _, p := range parents {
		t.Parents = append(t.Parents, Input{Task: TaskID(p)})
	}
	return t
}

func query(id string) Task {
	return Task{ID: TaskID(id), Kind: KindQuery, Reserve: Resources{MilliCPUs: 1000, MemoryBytes: gib}}
}

// newTest returns a scheduler on a fixed clock with the given workers.
func newTest(t *testing.T, workers ...WorkerState) (*Scheduler, *time.Time) {
	t.Helper()
	now := t0
	s := New(Config{Now: func() time.Time { return now }})
	for _, w := range workers {
		if err := s.UpsertWorker(w); err != nil {
			t.Fatal(err)
		}
	}
	return s, &now
}

func submit(t *testing.T, s *Scheduler, tasks ...Task) {
	t.Helper()
	for _, task := range tasks {
		if err := s.Submit(task); err != nil {
			t.Fatal(err)
		}
	}
}

func placed(ps []Placement) map[TaskID]Placement {
	m := make(map[TaskID]Placement, len(ps))
	for _, p := range ps {
		m[p.Task] = p
	}
	return m
}

func done(t *testing.T, s *Scheduler, p Placement, out int64, now time.Time) {
	t.Helper()
	if err := s.Done(Result{Task: p.Task, Attempt: p.Attempt, OutputBytes: out}, now); err != nil {
		t.Fatal(err)
	}
}

func TestPlacementPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		workers []WorkerState
		// busy are tasks of 1 CPU placed on a worker first.
		busy       map[string]int
		child      Task
		wantWorker WorkerID
		wantReason Reason
		wantFetch  int
	}{
		{
			name:       "child on its parent's worker",
			workers:    []WorkerState{node("a", 4), node("b", 4, "env1"), node("p", 4)},
			busy:       map[string]int{"p": 2},
			child:      withEnv(fn("c", "r1", "parent"), "env1"),
			wantWorker: "p", wantReason: ReasonLocal,
		},
		{
			name:       "parent's worker full: the one with the environment",
			workers:    []WorkerState{node("a", 4), node("b", 4, "env1"), node("p", 4)},
			busy:       map[string]int{"p": 4, "b": 2},
			child:      withEnv(fn("c", "r1", "parent"), "env1"),
			wantWorker: "b", wantReason: ReasonEnv, wantFetch: 1,
		},
		{
			name:       "no environment anywhere: the least loaded",
			workers:    []WorkerState{node("a", 4), node("b", 4), node("p", 4)},
			busy:       map[string]int{"p": 4, "a": 1},
			child:      withEnv(fn("c", "r1", "parent"), "env2"),
			wantWorker: "b", wantReason: ReasonLeastLoad, wantFetch: 1,
		},
		{
			name:       "too little /dev/shm for the input: elsewhere",
			workers:    []WorkerState{node("a", 4), func() WorkerState { w := node("b", 4, "env1"); w.ShmFreeBytes = 1; return w }(), node("p", 4)},
			busy:       map[string]int{"p": 4},
			child:      withEnv(fn("c", "r1", "parent"), "env1"),
			wantWorker: "a", wantReason: ReasonLeastLoad, wantFetch: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, now := newTest(t, tc.workers...)
			// The parent runs on p: the only worker it fits on.
			parent := fn("parent", "r1")
			parent.Reserve.MilliCPUs = 1000
			for _, w := range tc.workers {
				if w.ID != "p" {
					w.Alive = false
					_ = s.UpsertWorker(w)
				}
			}
			submit(t, s, parent)
			ps := s.Next(*now)
			if len(ps) != 1 || ps[0].Worker != "p" {
				t.Fatalf("parent placed %+v, want on p", ps)
			}
			for _, w := range tc.workers {
				_ = s.UpsertWorker(w)
			}
			done(t, s, ps[0], 100<<20, *now)
			for w, n := range tc.busy {
				for i := range n {
					s.workers[WorkerID(w)].placed.MilliCPUs += 1000
					_ = i
				}
			}
			submit(t, s, tc.child)
			ps = s.Next(*now)
			if len(ps) != 1 {
				t.Fatalf("placements %+v, want one", ps)
			}
			if p := ps[0]; p.Worker != tc.wantWorker || p.Reason != tc.wantReason || len(p.Fetches) != tc.wantFetch {
				t.Fatalf("child placed on %s (%s, %d fetches), want %s (%s, %d fetches)", p.Worker, p.Reason, len(p.Fetches), tc.wantWorker, tc.wantReason, tc.wantFetch)
			}
		})
	}
}

func withEnv(t Task, e EnvHash) Task {
	t.Env = e
	return t
}

func TestFanOutFetchesOncePerWorker(t *testing.T) {
	t.Parallel()
	s, now := newTest(t, node("a", 2), node("b", 2), node("c", 2))
	submit(t, s, fn("root", "r"))
	ps := s.Next(*now)
	root := ps[0]
	done(t, s, root, 1<<30, *now)
	for i := range 6 {
		submit(t, s, fn("child"+string(rune('0'+i)), "r", "root"))
	}
	ps = s.Next(*now)
	if len(ps) != 6 {
		t.Fatalf("placed %d children, want 6", len(ps))
	}
	fetches := map[WorkerID]int{}
	perWorker := map[WorkerID]int{}
	for _, p := range ps {
		perWorker[p.Worker]++
		fetches[p.Worker] += len(p.Fetches)
		if p.Worker == root.Worker && len(p.Fetches) != 0 {
			t.Errorf("child %s on the parent's worker fetches %v", p.Task, p.Fetches)
		}
	}
	if perWorker[root.Worker] != 2 {
		t.Errorf("%d children on the parent's worker, want 2 (its cores)", perWorker[root.Worker])
	}
	for w, n := range fetches {
		if w != root.Worker && n != 1 {
			t.Errorf("worker %s fetched the parent's output %d times, want once", w, n)
		}
	}
	if len(perWorker) != 3 {
		t.Errorf("children on %d workers, want 3", len(perWorker))
	}
}

func TestPriority(t *testing.T) {
	t.Parallel()
	s, now := newTest(t, node("a", 1))
	low := fn("low", "r1")
	low.Priority = 1
	high := fn("high", "r2")
	high.Priority = 9
	def := fn("default", "r3")
	submit(t, s, low, def, high, query("q"))
	var order []TaskID
	for range 4 {
		ps := s.Next(*now)
		if len(ps) != 1 {
			t.Fatalf("placed %v on a one-core worker, want one task", ps)
		}
		order = append(order, ps[0].Task)
		*now = now.Add(time.Second)
		done(t, s, ps[0], 0, *now)
	}
	if want := []TaskID{"q", "high", "default", "low"}; !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestAgingBeatsFreshQueries(t *testing.T) {
	t.Parallel()
	s, now := newTest(t, node("a", 1))
	blocker := query("blocker")
	submit(t, s, blocker)
	b := s.Next(*now)[0]
	low := fn("low", "r1")
	low.Priority = 1
	submit(t, s, low)
	// A fresh query comes every 10s and one ends; the function ages past
	// them after 39 levels at 10s a level.
	for i := 0; i < 100; i++ {
		*now = now.Add(10 * time.Second)
		submit(t, s, query(fmt.Sprint("q", i)))
		done(t, s, b, 0, *now)
		ps := s.Next(*now)
		if len(ps) != 1 {
			t.Fatalf("placed %v", ps)
		}
		b = ps[0]
		if b.Task == "low" {
			if b.Waited != 390*time.Second {
				t.Fatalf("low placed after %s, want 390s", b.Waited)
			}
			return
		}
	}
	t.Fatal("the low-priority function starved")
}

func TestReservationsWait(t *testing.T) {
	t.Parallel()
	s, now := newTest(t, node("a", 4))
	big := fn("big", "r")
	big.Reserve = Resources{MilliCPUs: 3000, MemoryBytes: 8 * gib}
	submit(t, s, big, fn("small1", "r"), fn("small2", "r"))
	ps := placed(s.Next(*now))
	if _, ok := ps["big"]; !ok || len(ps) != 2 {
		t.Fatalf("placed %v, want big and one small task (4 cores)", ps)
	}
	if got := s.Next(*now); len(got) != 0 {
		t.Fatalf("placed %v on a full worker", got)
	}
	done(t, s, ps["big"], 0, *now)
	if got := s.Next(*now); len(got) != 1 {
		t.Fatalf("placed %v after big finished, want the other small task", got)
	}
}

func TestHoldPreventsStarvation(t *testing.T) {
	t.Parallel()
	s, now := newTest(t, node("a", 4))
	// Small high-priority tasks keep the worker busy; the big one needs it
	// all.
	big := fn("big", "big")
	big.Priority = 1
	big.Reserve.MilliCPUs = 4000
	var running []Placement
	n := 0
	small := func() {
		f := fn("s"+strings.Repeat("x", n), "small")
		f.Priority = 10
		n++
		submit(t, s, f)
	}
	for range 3 {
		small()
	}
	running = append(running, s.Next(*now)...)
	submit(t, s, big)
	for step := 0; step < 200; step++ {
		*now = now.Add(5 * time.Second)
		// One small task ends, two new ones arrive.
		done(t, s, running[0], 0, *now)
		running = running[1:]
		small()
		small()
		for _, p := range s.Next(*now) {
			if p.Task == "big" {
				if p.Waited < s.cfg.HoldAfter {
					t.Fatalf("big placed after %s, before any hold", p.Waited)
				}
				return
			}
			running = append(running, p)
		}
	}
	t.Fatal("the big task starved behind small ones")
}

func TestSubmitErrors(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, node("a", 4), node("b", 8))
	s.workers["a"].cap.MemoryBytes = 64 * gib
	submit(t, s, fn("x", "r"))
	tests := []struct {
		name  string
		task  Task
		class error
		msg   string
	}{
		{"no id", Task{Kind: KindFunction}, errdefs.ErrInvalidArgument, "without ID"},
		{"duplicate", fn("x", "r"), errdefs.ErrAlreadyExists, "already submitted"},
		{"bad kind", Task{ID: "k", Kind: 7}, errdefs.ErrInvalidArgument, "unknown kind"},
		{"bad priority", func() Task { f := fn("p", "r"); f.Priority = 11; return f }(), errdefs.ErrInvalidArgument, "invalid priority 11"},
		{"negative", func() Task { f := fn("n", "r"); f.Reserve.MilliCPUs = -1; return f }(), errdefs.ErrInvalidArgument, "negative"},
		{"own parent", fn("o", "r", "o"), errdefs.ErrInvalidArgument, "its own output"},
		{"repeated parent", fn("rp", "r", "x", "x"), errdefs.ErrInvalidArgument, "repeated parent"},
		{"too many cpus", func() Task { f := fn("c", "r"); f.Reserve.MilliCPUs = 16000; return f }(), errdefs.ErrFailedPrecondition,
			"reserves 16 CPUs but the largest worker has 8 cores"},
		{"too much memory", func() Task { f := fn("m", "r"); f.Reserve.MemoryBytes = 100 * gib; return f }(), errdefs.ErrFailedPrecondition,
			"bytes of memory but the largest worker has"},
		{"no worker has both", func() Task {
			f := fn("mb", "r")
			f.Reserve = Resources{MilliCPUs: 6000, MemoryBytes: 40 * gib}
			return f
		}(),
			errdefs.ErrFailedPrecondition, "no worker has both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Submit(tc.task)
			if !errors.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Submit: %v, want %v containing %q", err, tc.class, tc.msg)
			}
		})
	}
	if _, ok := s.tasks["c"]; ok {
		t.Fatal("a refused task was queued")
	}
}

func TestRemoveWorkerRetries(t *testing.T) {
	t.Parallel()
	s, now := newTest(t, node("a", 1), node("b", 1))
	submit(t, s, fn("p", "r"))
	p := s.Next(*now)[0]
	done(t, s, p, 10, *now)
	submit(t, s, fn("c1", "r", "p"), fn("c2", "r", "p"))
	ps := s.Next(*now)
	if len(ps) != 2 || ps[0].Worker != p.Worker || ps[1].Worker == p.Worker {
		t.Fatalf("placed %+v, want the first child on p's worker %s and the second elsewhere", ps, p.Worker)
	}
	lost, survivor := ps[0], ps[1]
	// The worker holding p's output dies while running one child: the
	// child runs again, and so does p, whose output is lost with it.
	if again := s.RemoveWorker(p.Worker, *now); !slices.Equal(again, []TaskID{lost.Task, "p"}) {
		t.Fatalf("RemoveWorker returned %v, want [%s p]", again, lost.Task)
	}
	if err := s.Done(Result{Task: lost.Task, Attempt: lost.Attempt}, *now); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("late result of a dropped worker: %v, want conflict", err)
	}
	if got := s.Next(*now); len(got) != 0 {
		t.Fatalf("placed %v on a busy worker", got)
	}
	done(t, s, survivor, 0, *now)
	got := s.Next(*now)
	if len(got) != 1 || got[0].Task != "p" || got[0].Attempt != 2 || got[0].Worker != survivor.Worker {
		t.Fatalf("placed %+v, want p attempt 2 on %s", got, survivor.Worker)
	}
	done(t, s, got[0], 10, *now)
	got = s.Next(*now)
	if len(got) != 1 || got[0].Task != lost.Task || got[0].Attempt != 2 || got[0].Reason != ReasonLocal {
		t.Fatalf("retry placed %+v, want %s attempt 2 beside p's new output", got, lost.Task)
	}
}

func TestRemoveWorkerRerunsLostParent(t *testing.T) {
	t.Parallel()
	s, now := newTest(t, node("a", 1), node("b", 1))
	submit(t, s, fn("p", "r"), fn("blocker", "r"))
	ps := placed(s.Next(*now))
	submit(t, s, fn("busy", "r"))
	done(t, s, ps["p"], 10, *now)
	if got := s.Next(*now); len(got) != 1 || got[0].Worker != ps["p"].Worker {
		t.Fatalf("placed %v, want busy on p's worker", got)
	}
	submit(t, s, fn("c", "r", "p"))
	if got := s.Next(*now); len(got) != 0 {
		t.Fatalf("placed %v, want the child waiting for a core", got)
	}
	again := s.RemoveWorker(ps["p"].Worker, *now)
	if !slices.Equal(again, []TaskID{"busy", "p"}) {
		t.Fatalf("RemoveWorker returned %v, want [busy p] (p's output is lost, c waits for it)", again)
	}
	if st := s.tasks["c"].state; st != statePending {
		t.Fatalf("child is %s, want waiting for its parent again", s.tasks["c"].stateName())
	}
	done(t, s, ps["blocker"], 0, *now)
	got := s.Next(*now)
	if len(got) != 1 || got[0].Task != "p" {
		t.Fatalf("placed %v, want p again before its child", got)
	}
}

func TestEndRun(t *testing.T) {
	t.Parallel()
	s, now := newTest(t, node("a", 1))
	submit(t, s, fn("p", "r"), fn("c", "r", "p"), fn("d", "r", "c"), fn("other", "r2"))
	p := s.Next(*now)[0]
	if err := s.Done(Result{Task: p.Task, Attempt: p.Attempt, Failed: true}, *now); err != nil {
		t.Fatal(err)
	}
	if got := s.EndRun("r"); !slices.Equal(got, []TaskID{"c", "d"}) {
		t.Fatalf("EndRun dropped %v, want [c d]", got)
	}
	if got := s.Next(*now); len(got) != 1 || got[0].Task != "other" {
		t.Fatalf("placed %v after EndRun, want other", got)
	}
	if len(s.tasks) != 1 {
		t.Fatalf("scheduler still holds %d tasks, want only the running one", len(s.tasks))
	}
}

func TestForeignRunningCountsOnce(t *testing.T) {
	t.Parallel()
	s, now := newTest(t, node("a", 2))
	submit(t, s, fn("mine", "r"))
	p := s.Next(*now)[0]
	w := node("a", 2)
	// The heartbeat reports both our task and one placed before a restart.
	w.Running = []RunningTask{{ID: p.Task, Reserved: p.Reserve}, {ID: "old", Reserved: Resources{MilliCPUs: 1000}}}
	if err := s.UpsertWorker(w); err != nil {
		t.Fatal(err)
	}
	submit(t, s, fn("next", "r"))
	if got := s.Next(*now); len(got) != 0 {
		t.Fatalf("placed %v on a worker whose two cores are reserved", got)
	}
	w.Running = w.Running[:1]
	_ = s.UpsertWorker(w)
	if got := s.Next(*now); len(got) != 1 {
		t.Fatalf("placed %v once the foreign task ended, want next", got)
	}
}

func TestDoneErrors(t *testing.T) {
	t.Parallel()
	s, now := newTest(t, node("a", 1))
	submit(t, s, fn("x", "r"), fn("y", "r", "x"))
	if err := s.Done(Result{Task: "nope"}, *now); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown task: %v", err)
	}
	if err := s.Done(Result{Task: "y"}, *now); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("waiting task: %v", err)
	}
	p := s.Next(*now)[0]
	done(t, s, p, 0, *now)
	if err := s.Done(Result{Task: "x", Attempt: p.Attempt}, *now); err == nil {
		t.Error("a second result was taken")
	}
	if err := s.UpsertWorker(WorkerState{ID: ""}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("worker without name: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"negative reservation", Config{DefaultQuery: Resources{MilliCPUs: -1}}, false},
		{"negative priority", Config{QueryPriority: -1}, false},
		{"negative aging", Config{AgingStep: -time.Second}, false},
		{"negative backfill", Config{BackfillDepth: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.EnsureDefaults()
			if err := tc.cfg.Validate(); (err == nil) != tc.ok || err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestBackfillDepth(t *testing.T) {
	t.Parallel()
	now := t0
	s := New(Config{Now: func() time.Time { return now }, BackfillDepth: 2})
	if err := s.UpsertWorker(node("a", 4)); err != nil {
		t.Fatal(err)
	}
	big := fn("big", "r")
	big.Priority = 10
	big.Reserve.MilliCPUs = 4000
	submit(t, s, fn("blocker", "r"))
	s.Next(now)
	submit(t, s, big)
	for i := range 5 {
		submit(t, s, fn(fmt.Sprint("small", i), "r"))
	}
	// big does not fit; only two tasks after it are tried.
	if got := s.Next(now); len(got) != 2 {
		t.Fatalf("placed %d tasks, want 2 (the backfill depth)", len(got))
	}
	if got := s.Next(now); len(got) != 1 {
		t.Fatalf("placed %d tasks, want the last free core", len(got))
	}
}
