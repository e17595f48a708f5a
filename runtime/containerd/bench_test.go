package containerd_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/launchertest"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

// BenchmarkFunctionStart measures, in one run, function start to the first
// line the user's code prints (no heavy imports), over 50 starts each:
// `python -I -S -c pass` (the floor), the process launcher and the
// containerd launcher.
// Run: go test -run '^$' -bench FunctionStart -benchtime 1x ./runtime/containerd
func BenchmarkFunctionStart(b *testing.B) {
	const n = 50
	env := launchertest.Env(b)
	funcs := launchertest.FunctionsFile(b)
	ctx := context.Background()
	ctr, _ := newLauncher(b)
	launch := func(l function.Launcher) func() time.Duration {
		return func() time.Duration {
			dir := launchertest.DataDir(b)
			start := time.Now()
			var first time.Time
			_, err := l.Launch(ctx, function.Invocation{Model: "hello", Env: env, ModulePath: funcs, Function: "hello",
				DataDir: dir, Timeout: time.Minute, Log: func(line function.LogLine) {
					if first.IsZero() {
						first = line.Time
					}
				}})
			if err != nil || first.IsZero() {
				b.Fatalf("launch: %v (first line %v)", err, first)
			}
			return first.Sub(start)
		}
	}
	cases := []struct {
		name, key string
		run       func() time.Duration
	}{
		{"python -I -S -c pass", "python", func() time.Duration {
			start := time.Now()
			if err := exec.Command(env.Python.Path, "-I", "-S", "-c", "pass").Run(); err != nil {
				b.Fatal(err)
			}
			return time.Since(start)
		}},
		{"process", "process", launch(process.New(process.Config{}))},
		{"containerd", "containerd", launch(ctr)},
	}
	p50s := map[string]float64{}
	for i := 0; i < b.N; i++ {
		for _, c := range cases {
			c.run() // warm the page cache
			ds := make([]time.Duration, n)
			for j := range ds {
				ds[j] = c.run()
			}
			sort.Slice(ds, func(x, y int) bool { return ds[x] < ds[y] })
			p50, p95 := ds[n/2], ds[n*95/100]
			p50s[c.name] = float64(p50.Microseconds()) / 1000
			fmt.Fprintf(os.Stderr, "%-22s p50 %6.1f ms  p95 %6.1f ms  (%.1fx / %.1fx the interpreter)\n", c.name,
				float64(p50.Microseconds())/1000, float64(p95.Microseconds())/1000,
				p50s[c.name]/p50s[cases[0].name], float64(p95.Microseconds())/1000/p50s[cases[0].name])
			b.ReportMetric(float64(p50.Microseconds())/1000, c.key+"-p50-ms")
		}
	}
}
