// Package sim drives runtime/scheduler with a simulated clock over a fleet
// of virtual workers, in the spirit of Bauplan's Eudoxia simulator: the
// scheduler code is the control plane's, only the workers and the clock
// are simulated. It generates seeded workloads (NewDAG, NewTrace), runs
// them (Simulate) and reports what a user would see: query latency, run
// makespan, and how long each placement decision took in wall time.
//
// The cost model of a virtual worker: a function runs for its Duration
// after its inputs that live on other workers are copied into its
// /dev/shm (at Config.FetchBandwidth) and its environment is installed
// (Config.EnvInstall, once per worker and environment; tasks arriving
// while it installs wait for it). Queries have no inputs and no
// environment. Each worker reports its state (UpsertWorker) when a task of
// it ends, with its /dev/shm free less the outputs and copies it holds
// for runs in flight. The control plane places once per Config.Tick: the
// events of a tick are taken together, then Next is called.
package sim

import (
	"container/heap"
	"fmt"
	"slices"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/scheduler"
)

// Config is the simulated fleet's cost model.
type Config struct {
	// FetchBandwidth is the bytes per second of a cross-worker copy
	// (default 1.5 GB/s, Flight over a data-center network).
	FetchBandwidth float64
	// EnvInstall is the time to install an environment on a worker that
	// does not have it (default 45s).
	EnvInstall time.Duration
	// Tick is how often the control plane places: events are taken in
	// batches at multiples of Tick (default 100ms).
	Tick time.Duration
}

func (c *Config) ensureDefaults() {
	if c.FetchBandwidth == 0 {
		c.FetchBandwidth = 1.5e9
	}
	if c.EnvInstall == 0 {
		c.EnvInstall = 45 * time.Second
	}
	if c.Tick == 0 {
		c.Tick = 100 * time.Millisecond
	}
}

// Result is what one simulation measured.
type Result struct {
	// QueryLatency is, per query, the time from arrival to its end.
	QueryLatency []time.Duration
	// RunMakespan is, per run, the time from arrival to its last
	// function's end; RunSlowdown the makespan over the run's critical path.
	RunMakespan []time.Duration
	RunSlowdown []float64
	// End is when the last task ended.
	End time.Duration
	// PlaceLatency is, per placed task, the wall time of the Next call
	// that placed it (the decision it waited for).
	PlaceLatency []time.Duration
	// Fetched is the bytes copied between workers; Installs the
	// environments installed; Local the placements beside a parent.
	Fetched  int64
	Installs int
	Local    int
	Placed   int
}

type event struct {
	at   time.Duration
	seq  int
	task *simTask // a task ends
	arr  *Arrival // or an arrival
}

type events []event

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	return e[i].at < e[j].at || e[i].at == e[j].at && e[i].seq < e[j].seq
}
func (e events) Swap(i, j int) { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)   { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

type simTask struct {
	id       scheduler.TaskID
	run      *simRun // nil for a query
	arrived  time.Duration
	duration time.Duration
	output   int64
	env      scheduler.EnvHash
	p        scheduler.Placement
}

type simRun struct {
	run     *Run
	arrived time.Duration
	left    int
	// held is the /dev/shm the run's outputs and copies take, per worker.
	held map[scheduler.WorkerID]int64
}

type simWorker struct {
	st      scheduler.WorkerState
	shm     int64                               // total /dev/shm
	held    int64                               // taken by runs in flight
	envs    map[scheduler.EnvHash]time.Duration // installed (or being) at
	running map[scheduler.TaskID]scheduler.Resources
}

// Simulate runs trace on a Scheduler made with policy, on a simulated
// clock. It returns an error when a task of the trace is refused or never
// placed.
func Simulate(cfg Config, policy scheduler.Config, trace Trace) (Result, error) {
	cfg.ensureDefaults()
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var now time.Duration
	policy.Now = func() time.Time { return epoch.Add(now) }
	s := scheduler.New(policy)
	workers := make(map[scheduler.WorkerID]*simWorker, len(trace.Workers))
	for _, st := range trace.Workers {
		w := &simWorker{st: st, shm: st.ShmFreeBytes, envs: map[scheduler.EnvHash]time.Duration{},
			running: map[scheduler.TaskID]scheduler.Resources{}}
		for _, e := range st.Envs {
			w.envs[e] = 0
		}
		workers[st.ID] = w
		if err := s.UpsertWorker(st); err != nil {
			return Result{}, err
		}
	}
	report := func(w *simWorker) error {
		st := w.st
		st.ShmFreeBytes = max(w.shm-w.held, 0)
		st.Envs = st.Envs[:0]
		for e, at := range w.envs {
			if at <= now {
				st.Envs = append(st.Envs, e)
			}
		}
		slices.Sort(st.Envs)
		st.Running = st.Running[:0]
		for id, r := range w.running {
			st.Running = append(st.Running, scheduler.RunningTask{ID: id, Reserved: r})
		}
		return s.UpsertWorker(st)
	}

	var res Result
	var q events
	seq := 0
	push := func(e event) {
		e.at = (e.at + cfg.Tick - 1) / cfg.Tick * cfg.Tick
		e.seq = seq
		seq++
		heap.Push(&q, e)
	}
	for i := range trace.Arrivals {
		push(event{at: trace.Arrivals[i].At, arr: &trace.Arrivals[i]})
	}
	tasks := map[scheduler.TaskID]*simTask{}
	for q.Len() > 0 {
		now = q[0].at
		for q.Len() > 0 && q[0].at == now {
			e := heap.Pop(&q).(event)
			switch {
			case e.arr != nil && e.arr.Run != nil:
				r := &simRun{run: e.arr.Run, arrived: e.arr.At, left: len(e.arr.Run.Funcs), held: map[scheduler.WorkerID]int64{}}
				for _, f := range r.run.Funcs {
					t := scheduler.Task{ID: f.ID, Kind: scheduler.KindFunction, Run: r.run.ID, Env: f.Env,
						Reserve: f.Reserve, Priority: r.run.Priority}
					for _, p := range f.Parents {
						t.Parents = append(t.Parents, scheduler.Input{Task: p})
					}
					if err := s.Submit(t); err != nil {
						return res, err
					}
					tasks[f.ID] = &simTask{id: f.ID, run: r, arrived: e.arr.At, duration: f.Duration, output: f.OutputBytes, env: f.Env}
				}
			case e.arr != nil:
				qt := e.arr.Query
				if err := s.Submit(scheduler.Task{ID: qt.ID, Kind: scheduler.KindQuery, Reserve: qt.Reserve}); err != nil {
					return res, err
				}
				tasks[qt.ID] = &simTask{id: qt.ID, arrived: e.arr.At, duration: qt.Duration}
			default:
				t := e.task
				w := workers[t.p.Worker]
				delete(w.running, t.id)
				delete(tasks, t.id)
				if err := s.Done(scheduler.Result{Task: t.id, Attempt: t.p.Attempt, OutputBytes: t.output}, epoch.Add(now)); err != nil {
					return res, err
				}
				if r := t.run; r != nil {
					r.held[w.st.ID] += t.output
					w.held += t.output
					r.left--
					if r.left == 0 {
						res.RunMakespan = append(res.RunMakespan, now-r.arrived)
						res.RunSlowdown = append(res.RunSlowdown, float64(now-r.arrived)/float64(r.run.CriticalPath()))
						s.EndRun(r.run.ID)
						for id, b := range r.held {
							workers[id].held -= b
						}
					}
				} else {
					res.QueryLatency = append(res.QueryLatency, now-t.arrived)
				}
				res.End = max(res.End, now)
				if err := report(w); err != nil {
					return res, err
				}
			}
		}
		start := time.Now()
		ps := s.Next(epoch.Add(now))
		took := time.Since(start)
		for _, p := range ps {
			t := tasks[p.Task]
			t.p = p
			w := workers[p.Worker]
			w.running[t.id] = p.Reserve
			begin := now
			var fetched int64
			for _, f := range p.Fetches {
				fetched += f.SizeBytes
			}
			if fetched > 0 {
				begin += time.Duration(float64(fetched) / cfg.FetchBandwidth * float64(time.Second))
				w.held += fetched
				t.run.held[w.st.ID] += fetched
			}
			if t.env != "" {
				ready, ok := w.envs[t.env]
				if !ok {
					ready = now + cfg.EnvInstall
					w.envs[t.env] = ready
					res.Installs++
				}
				begin = max(begin, ready)
			}
			if p.Reason == scheduler.ReasonLocal {
				res.Local++
			}
			res.Fetched += fetched
			res.Placed++
			res.PlaceLatency = append(res.PlaceLatency, took)
			push(event{at: begin + t.duration, task: t})
		}
	}
	if len(tasks) > 0 {
		return res, fmt.Errorf("%d tasks never placed (%d workers)", len(tasks), len(workers))
	}
	return res, nil
}
