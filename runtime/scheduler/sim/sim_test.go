package sim

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/scheduler"
)

// dag200 is the 200-function DAG of the placement and makespan
// benchmarks: ten layers of twenty, three environments, functions of 15s
// median (log-normal) reserving 1-2 CPUs, outputs of 64 MiB median.
func dag200() Run {
	rng := rand.New(rand.NewPCG(200, 0xda6))
	pool := []scheduler.EnvHash{"env-pandas", "env-polars", "env-sklearn"}
	return NewDAG(rng, "dag200", DAGShape{Funcs: 200, Width: 20, Envs: 3, MedianDuration: 15 * time.Second, MedianOutput: 64 << 20}, pool)
}

// threeWorkers is the fleet of the makespan benchmark: three workers of 16
// cores and 64 GiB.
func threeWorkers() []scheduler.WorkerState {
	var ws []scheduler.WorkerState
	for i := range 3 {
		ws = append(ws, scheduler.WorkerState{ID: scheduler.WorkerID(fmt.Sprint("w", i)), Cores: 16, MemoryBytes: 64 << 30,
			ShmFreeBytes: 32 << 30, Launcher: "process", Alive: true})
	}
	return ws
}

// dagTrace is one run of dag on workers, arriving at 0.
func dagTrace(run Run, workers []scheduler.WorkerState) Trace {
	return Trace{Workers: workers, Arrivals: []Arrival{{Run: &run}}}
}

// simulateBoth runs tr on the scheduler and on the FIFO baseline.
func simulateBoth(tb testing.TB, cfg Config, tr Trace) (ours, base Result) {
	tb.Helper()
	ours, err := Simulate(cfg, scheduler.Config{}, tr)
	if err != nil {
		tb.Fatal(err)
	}
	base, err = Simulate(cfg, scheduler.Config{FIFO: true}, tr)
	if err != nil {
		tb.Fatal(err)
	}
	return ours, base
}

func makespanTable(run Run, ours, base Result) Table {
	cp := run.CriticalPath()
	slow := func(d time.Duration) string { return fmt.Sprintf("%s (%.2fx)", Seconds(d), d.Seconds()/cp.Seconds()) }
	return Table{
		Title: fmt.Sprintf("makespan of a %d-function DAG on 3 simulated workers of 16 cores (goal <= 1.2x the critical path)", len(run.Funcs)),
		Rows: [][4]string{
			Row("makespan (x critical path)", ours.End, base.End, slow),
			Row("bytes copied between workers", float64(ours.Fetched), float64(base.Fetched), func(v float64) string { return fmt.Sprintf("%.2f GiB", v/(1<<30)) }),
			Row("environment installs", float64(ours.Installs), float64(base.Installs), func(v float64) string { return fmt.Sprint(v) }),
		},
		Notes: []string{
			fmt.Sprintf("critical path %s, reserved work %s (%s on 48 cores)", Seconds(cp), Seconds(run.Work()), Seconds(run.Work()/48)),
			"cost model: inputs from another worker copied at 1.5 GB/s before a function starts; 45s to install an environment on a worker",
		},
	}
}

func TestDAG200Makespan(t *testing.T) {
	t.Parallel()
	run := dag200()
	ours, base := simulateBoth(t, Config{}, dagTrace(run, threeWorkers()))
	t.Log("\n" + makespanTable(run, ours, base).String())
	if len(ours.RunMakespan) != 1 || ours.Placed != 200 {
		t.Fatalf("placed %d functions, finished %d runs", ours.Placed, len(ours.RunMakespan))
	}
	if ratio := ours.End.Seconds() / run.CriticalPath().Seconds(); ratio > 1.2 {
		t.Errorf("makespan %s is %.2fx the critical path %s, goal 1.2x", ours.End, ratio, run.CriticalPath())
	}
}

// smallFleet is the fleet trace at a size that runs in a unit test.
func smallFleet(seed uint64) TraceShape {
	return TraceShape{Seed: seed, Workers: 40, Length: 5 * time.Minute, QueriesPerSecond: 2, RunsPerMinute: 2,
		RunFuncs: [2]int{10, 60}, Envs: 10}
}

func TestFleetSmall(t *testing.T) {
	t.Parallel()
	tr := NewTrace(smallFleet(1))
	ours, base := simulateBoth(t, Config{}, tr)
	t.Log("\n" + fleetTable(tr, ours, base).String())
	queries, runs := 0, 0
	for _, a := range tr.Arrivals {
		if a.Run != nil {
			runs++
		} else {
			queries++
		}
	}
	for _, r := range []Result{ours, base} {
		if len(r.QueryLatency) != queries || len(r.RunMakespan) != runs {
			t.Fatalf("finished %d of %d queries and %d of %d runs", len(r.QueryLatency), queries, len(r.RunMakespan), runs)
		}
	}
	// The same trace gives the same simulation.
	again, err := Simulate(Config{}, scheduler.Config{}, tr)
	if err != nil {
		t.Fatal(err)
	}
	if again.End != ours.End || again.Fetched != ours.Fetched || Percentile(again.QueryLatency, 99) != Percentile(ours.QueryLatency, 99) {
		t.Fatal("two simulations of the same trace differ")
	}
}

func fleetTable(tr Trace, ours, base Result) Table {
	queries, runs, funcs := 0, 0, 0
	for _, a := range tr.Arrivals {
		if a.Run != nil {
			runs++
			funcs += len(a.Run.Funcs)
		} else {
			queries++
		}
	}
	x := func(v float64) string { return fmt.Sprintf("%.2fx", v) }
	gib := func(v float64) string { return fmt.Sprintf("%.1f GiB", v/(1<<30)) }
	n := func(v float64) string { return fmt.Sprint(v) }
	return Table{
		Title: fmt.Sprintf("simulated fleet: %d virtual workers, %s of arrivals: %d queries, %d runs (%d functions)",
			len(tr.Workers), tr.Shape.Length, queries, runs, funcs),
		Rows: [][4]string{
			Row("query latency p50", Percentile(ours.QueryLatency, 50), Percentile(base.QueryLatency, 50), Seconds),
			Row("query latency p99", Percentile(ours.QueryLatency, 99), Percentile(base.QueryLatency, 99), Seconds),
			Row("run makespan p50", Percentile(ours.RunMakespan, 50), Percentile(base.RunMakespan, 50), Seconds),
			Row("run makespan p99", Percentile(ours.RunMakespan, 99), Percentile(base.RunMakespan, 99), Seconds),
			Row("run makespan mean", Mean(ours.RunMakespan), Mean(base.RunMakespan), Seconds),
			Row("run makespan / critical path, mean", Mean(ours.RunSlowdown), Mean(base.RunSlowdown), x),
			Row("trace completed at", ours.End, base.End, Seconds),
			Row("bytes copied between workers", float64(ours.Fetched), float64(base.Fetched), gib),
			Row("environment installs", float64(ours.Installs), float64(base.Installs), n),
			Row("placement wall time p99 (per task)", Percentile(ours.PlaceLatency, 99), Percentile(base.PlaceLatency, 99), Seconds),
		},
		Notes: []string{
			"same seeded trace, same scheduler code; the baseline is Config.FIFO: ready order, least loaded worker, no locality, environment or priority",
			"cost model: inputs from another worker copied at 1.5 GB/s; 45s to install an environment on a worker; arrivals in bursts (2x rate one minute in five)",
		},
	}
}
