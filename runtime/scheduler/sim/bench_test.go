package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/scheduler"
)

// The benchmarks print a table of the scheduler beside the FIFO baseline,
// both measured in the same run, and report the headline figures as
// benchmark metrics. Run them with
//
//	GOFLAGS=-tags=duckdb_arrow go test -run '^$' -bench . -benchtime 1x ./runtime/scheduler/sim

// BenchmarkPlacement200 is the wall time of the placement decision per
// function of the 200-function DAG on three workers (goal p99 <= 5ms):
// each function is charged the whole Next call that placed it.
func BenchmarkPlacement200(b *testing.B) {
	run := dag200()
	tr := dagTrace(run, threeWorkers())
	var lat []time.Duration
	for b.Loop() {
		r, err := Simulate(Config{}, scheduler.Config{}, tr)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, r.PlaceLatency...)
	}
	p50, p99 := Percentile(lat, 50), Percentile(lat, 99)
	b.ReportMetric(float64(p50)/1e3, "p50-µs/func")
	b.ReportMetric(float64(p99)/1e3, "p99-µs/func")
	fmt.Printf("placement latency per function, 200-function DAG on 3 workers (goal p99 <= 5ms): p50 %s, p99 %s over %d placements\n",
		Seconds(p50), Seconds(p99), len(lat))
	if p99 > 5*time.Millisecond {
		b.Errorf("placement p99 %s, goal 5ms", p99)
	}
}

// BenchmarkMakespan3Workers is the simulated makespan of the 200-function
// DAG on three workers against its critical path (goal <= 1.2x).
func BenchmarkMakespan3Workers(b *testing.B) {
	run := dag200()
	var ours, base Result
	for b.Loop() {
		ours, base = simulateBoth(b, Config{}, dagTrace(run, threeWorkers()))
	}
	cp := run.CriticalPath().Seconds()
	b.ReportMetric(ours.End.Seconds()/cp, "x-critical-path")
	b.ReportMetric(base.End.Seconds()/cp, "fifo-x-critical-path")
	fmt.Print(makespanTable(run, ours, base))
}

// fleet1000 is the simulated fleet of the Eudoxia-style benchmark: 1,000
// workers of 4-16 cores, four minutes of arrivals in bursts, loaded beyond
// capacity: 50 queries a second and 150 runs a minute of 10-200 functions
// over 200 environments.
func fleet1000() TraceShape {
	return TraceShape{Seed: 1000, Workers: 1000, Length: 4 * time.Minute, QueriesPerSecond: 50, RunsPerMinute: 150,
		RunFuncs: [2]int{10, 200}, Envs: 200}
}

// BenchmarkFleet1000 drives the scheduler and the FIFO baseline over the
// same recorded trace of queries and runs on 1,000 virtual workers and
// reports query latency p99 and run makespan.
func BenchmarkFleet1000(b *testing.B) {
	tr := NewTrace(fleet1000())
	var ours, base Result
	for b.Loop() {
		ours, base = simulateBoth(b, Config{}, tr)
	}
	b.ReportMetric(Percentile(ours.QueryLatency, 99).Seconds(), "query-p99-s")
	b.ReportMetric(Percentile(base.QueryLatency, 99).Seconds(), "fifo-query-p99-s")
	b.ReportMetric(Mean(ours.RunMakespan).Seconds(), "run-makespan-mean-s")
	b.ReportMetric(Mean(base.RunMakespan).Seconds(), "fifo-run-makespan-mean-s")
	fmt.Print(fleetTable(tr, ours, base))
}
