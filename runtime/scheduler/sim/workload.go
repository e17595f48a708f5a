package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/scheduler"
)

// Func is one function of a run's DAG, with what the simulation needs to
// know of it: how long it runs and how large its output is.
type Func struct {
	ID          scheduler.TaskID
	Parents     []scheduler.TaskID // earlier in the run's slice
	Env         scheduler.EnvHash
	Reserve     scheduler.Resources
	Duration    time.Duration
	OutputBytes int64
}

// Run is a run of a pipeline: its functions in topological order.
type Run struct {
	ID       scheduler.RunID
	Priority int
	Funcs    []Func
}

// CriticalPath is the longest chain of function durations through r: no
// scheduler finishes r sooner, whatever its fleet.
func (r Run) CriticalPath() time.Duration {
	finish := make(map[scheduler.TaskID]time.Duration, len(r.Funcs))
	var longest time.Duration
	for _, f := range r.Funcs {
		var start time.Duration
		for _, p := range f.Parents {
			start = max(start, finish[p])
		}
		finish[f.ID] = start + f.Duration
		longest = max(longest, finish[f.ID])
	}
	return longest
}

// Work is the sum of the reserved CPU-time of r's functions.
func (r Run) Work() time.Duration {
	var w time.Duration
	for _, f := range r.Funcs {
		w += time.Duration(float64(f.Duration) * float64(f.Reserve.MilliCPUs) / 1000)
	}
	return w
}

// DAGShape tunes NewDAG.
type DAGShape struct {
	Funcs int
	// Width is the number of functions per layer; each function reads one
	// to three functions of the layers above, mostly the one just above.
	Width int
	// Envs is the number of Python environments the run uses.
	Envs int
	// MedianDuration is the median function time; durations are
	// log-normal around it (sigma 0.8), between a tenth and ten times it.
	MedianDuration time.Duration
	// MedianOutput is the median output size (log-normal, sigma 1).
	MedianOutput int64
}

// NewDAG generates a seeded layered DAG of shape.Funcs functions, the
// shape of a medallion pipeline: wide layers of transformations, each
// reading a few functions of the layers above.
func NewDAG(rng *rand.Rand, id scheduler.RunID, shape DAGShape, envPool []scheduler.EnvHash) Run {
	r := Run{ID: id, Priority: 1 + rng.IntN(10)}
	envs := make([]scheduler.EnvHash, 0, shape.Envs)
	for range max(shape.Envs, 1) {
		envs = append(envs, envPool[rng.IntN(len(envPool))])
	}
	for i := range shape.Funcs {
		f := Func{
			ID:          scheduler.TaskID(fmt.Sprintf("%s/f%03d", id, i)),
			Env:         envs[rng.IntN(len(envs))],
			Reserve:     scheduler.Resources{MilliCPUs: int64(1+rng.IntN(2)) * 1000, MemoryBytes: int64(1+rng.IntN(4)) << 30},
			Duration:    logNormal(rng, shape.MedianDuration, 0.8),
			OutputBytes: int64(float64(shape.MedianOutput) * math.Exp(rng.NormFloat64())),
		}
		if layer := i / shape.Width; layer > 0 {
			above := r.Funcs[(layer-1)*shape.Width : layer*shape.Width]
			for range 1 + rng.IntN(3) {
				// Mostly the layer just above, sometimes one further up.
				pool := above
				if rng.IntN(4) == 0 {
					pool = r.Funcs[:layer*shape.Width]
				}
				if p := pool[rng.IntN(len(pool))].ID; !slices.Contains(f.Parents, p) {
					f.Parents = append(f.Parents, p)
				}
			}
		}
		r.Funcs = append(r.Funcs, f)
	}
	return r
}

func logNormal(rng *rand.Rand, median time.Duration, sigma float64) time.Duration {
	x := math.Exp(rng.NormFloat64() * sigma)
	return time.Duration(float64(median) * min(max(x, 0.1), 10))
}

// Arrival is a query or a run reaching the control plane.
type Arrival struct {
	At time.Duration // since the start of the trace
	// Run is set for a run; otherwise the arrival is a query.
	Run   *Run
	Query QueryTask
}

// QueryTask is an interactive query.
type QueryTask struct {
	ID       scheduler.TaskID
	Reserve  scheduler.Resources
	Duration time.Duration
}

// TraceShape tunes NewTrace.
type TraceShape struct {
	Seed    uint64
	Workers int
	Length  time.Duration
	// QueriesPerSecond and RunsPerMinute are the mean arrival rates; both
	// come in bursts (rates double for a fifth of the time).
	QueriesPerSecond float64
	RunsPerMinute    float64
	// RunFuncs bounds the number of functions of a run (uniform).
	RunFuncs [2]int
	// Envs is the size of the fleet's pool of environments.
	Envs int
}

// Trace is a recorded mix of queries and runs over a fleet.
type Trace struct {
	Shape    TraceShape
	Workers  []scheduler.WorkerState
	Arrivals []Arrival
}

// NewTrace generates the seeded trace of shape: the same shape gives the
// same trace, so two schedulers are compared on the same arrivals.
func NewTrace(shape TraceShape) Trace {
	rng := rand.New(rand.NewPCG(shape.Seed, 0x5eed))
	tr := Trace{Shape: shape}
	pool := make([]scheduler.EnvHash, max(shape.Envs, 1))
	for i := range pool {
		pool[i] = scheduler.EnvHash(fmt.Sprintf("env%03d", i))
	}
	for i := range shape.Workers {
		cores := []int{4, 8, 8, 16}[rng.IntN(4)]
		tr.Workers = append(tr.Workers, scheduler.WorkerState{
			ID: scheduler.WorkerID(fmt.Sprintf("w%04d", i)), Cores: cores, MemoryBytes: int64(cores) * 4 << 30,
			ShmFreeBytes: int64(cores) * 2 << 30, Launcher: "process", Alive: true,
		})
	}
	burst := func(at time.Duration) float64 {
		// Every fifth minute-long window is a burst at twice the rate.
		if int(at/time.Minute)%5 == 2 {
			return 2
		}
		return 0.75
	}
	var at time.Duration
	for q := 0; ; q++ {
		at += time.Duration(rng.ExpFloat64() / (shape.QueriesPerSecond * burst(at)) * float64(time.Second))
		if at >= shape.Length {
			break
		}
		tr.Arrivals = append(tr.Arrivals, Arrival{At: at, Query: QueryTask{
			ID:       scheduler.TaskID(fmt.Sprintf("q%06d", q)),
			Reserve:  scheduler.Resources{MilliCPUs: int64(1+rng.IntN(4)) * 1000, MemoryBytes: int64(1+rng.IntN(8)) << 30},
			Duration: logNormal(rng, 400*time.Millisecond, 1),
		}})
	}
	at = 0
	for n := 0; ; n++ {
		at += time.Duration(rng.ExpFloat64() / (shape.RunsPerMinute * burst(at)) * float64(time.Minute))
		if at >= shape.Length {
			break
		}
		funcs := shape.RunFuncs[0] + rng.IntN(shape.RunFuncs[1]-shape.RunFuncs[0]+1)
		run := NewDAG(rng, scheduler.RunID(fmt.Sprintf("run%05d", n)), DAGShape{
			Funcs: funcs, Width: max(funcs/6, 2), Envs: 1 + rng.IntN(3),
			MedianDuration: 15 * time.Second, MedianOutput: 64 << 20,
		}, pool)
		tr.Arrivals = append(tr.Arrivals, Arrival{At: at, Run: &run})
	}
	slices.SortStableFunc(tr.Arrivals, func(a, b Arrival) int { return int(a.At - b.At) })
	return tr
}
