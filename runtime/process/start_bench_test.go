package process_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/lhbuild"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/launchertest"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

// BenchmarkStart is the start of a function as a user gets it, up to its
// first line of output (testdata/functions/funcs.py hello), with and
// without isolation, against the bare interpreter (python -I -S -c pass,
// to its exit), all in the same run, interleaved. The function's init is
// the lakehouse binary itself (built once per run from the module root
// into the test cache), not this test binary. It reports p50 and p95 of
// each and the isolation's cost at p50. Without isolation there is no
// init: the launcher starts the interpreter directly.
//
// Run: go test -tags duckdb_arrow -run '^$' -bench Start -benchtime 50x ./runtime/process
func BenchmarkStart(b *testing.B) {
	lakehouse := lhbuild.Binary(b)
	env := launchertest.Env(b)
	funcs := launchertest.FunctionsFile(b)
	ctx := context.Background()
	isolated := process.New(process.Config{Init: lakehouse})
	plain := process.New(process.Config{Isolation: process.IsolationNone, Init: lakehouse})
	firstLine := func(l *process.Launcher) time.Duration {
		dir := launchertest.DataDir(b)
		start := time.Now()
		var first time.Duration
		_, err := l.Launch(ctx, function.Invocation{Model: "hello", Env: env, ModulePath: funcs, Function: "hello",
			DataDir: dir, Timeout: time.Minute, Log: func(function.LogLine) {
				if first == 0 {
					first = time.Since(start)
				}
			}})
		if err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		return first
	}
	bare := func() time.Duration {
		start := time.Now()
		if out, err := exec.Command(env.Python.Path, "-I", "-S", "-c", "pass").CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		return time.Since(start)
	}
	var py, none, iso []time.Duration
	firstLine(isolated) // warm the page cache
	firstLine(plain)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		py = append(py, bare())
		none = append(none, firstLine(plain))
		iso = append(iso, firstLine(isolated))
	}
	b.StopTimer()
	pct := func(ds []time.Duration, p float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"python", py}, {"unisolated", none}, {"isolated", iso}} {
		b.ReportMetric(ms(pct(m.ds, 0.5)), m.name+"-p50-ms")
		b.ReportMetric(ms(pct(m.ds, 0.95)), m.name+"-p95-ms")
	}
	b.ReportMetric(ms(pct(iso, 0.5)-pct(none, 0.5)), "isolation-p50-ms")
	fmt.Fprintf(os.Stderr, "start to first line, %d runs, init %s (%s): python -I -S -c pass p50 %.1f ms p95 %.1f ms; unisolated p50 %.1f ms p95 %.1f ms; isolated p50 %.1f ms p95 %.1f ms; isolation adds %.1f ms at p50\n",
		b.N, lakehouse, process.Describe(process.IsolationAuto), ms(pct(py, 0.5)), ms(pct(py, 0.95)), ms(pct(none, 0.5)), ms(pct(none, 0.95)),
		ms(pct(iso, 0.5)), ms(pct(iso, 0.95)), ms(pct(iso, 0.5)-pct(none, 0.5)))
}
