package process_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/launchertest"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

// BenchmarkAddPackage is "add a package and re-run": a function gains
// prophet (BENCH_PACKAGE overrides it). It measures, in one run:
//
//	cold      empty package cache (and no pip or uv cache): resolve with
//	          uv, download, install, run; also with the pip resolver
//	warm      resolution cached and packages installed: assemble, run
//	baseline  python -m venv + pip install --no-cache-dir of the same spec, run
//
// and the function's own import time, so warm overhead = warm - import.
// Run: go test -run '^$' -bench AddPackage -benchtime 1x ./runtime/process
func BenchmarkAddPackage(b *testing.B) {
	pkg := os.Getenv("BENCH_PACKAGE")
	if pkg == "" {
		pkg = "prophet"
	}
	spec := envcache.Spec{Python: "3.11", Requirements: []string{"pandas", pkg}}
	funcs := filepath.Join(filepath.Dir(launchertest.FunctionsFile(b)), "forecast.py")
	ctx := context.Background()
	l := process.New(process.Config{})
	run := func(env *envcache.Environment) float64 {
		var imp float64
		dir := launchertest.DataDir(b)
		_, err := l.Launch(ctx, function.Invocation{Model: "forecast", Env: env, ModulePath: funcs, Function: "forecast",
			DataDir: dir, Timeout: 5 * time.Minute, Log: func(line function.LogLine) {
				if v, ok := strings.CutPrefix(line.Text, "import_seconds="); ok {
					imp, _ = strconv.ParseFloat(v, 64)
				}
			}})
		if err != nil {
			b.Fatal(err)
		}
		return imp
	}
	uv := envtest.UV(b)
	// Nothing cached anywhere: no pip HTTP cache, a fresh uv cache.
	b.Setenv("PIP_NO_CACHE_DIR", "1")
	b.Setenv("UV_CACHE_DIR", b.TempDir())
	for i := 0; i < b.N; i++ {
		coldWith := func(resolver string) (time.Duration, *envcache.Cache) {
			dir := b.TempDir()
			c := envtest.Open(b, envcache.Config{Dir: dir, Resolver: resolver, UV: uv})
			start := time.Now()
			env, err := c.Environment(ctx, spec)
			if err != nil {
				b.Fatal(err)
			}
			run(env)
			d := time.Since(start)
			c.Wait(ctx) // background bytecode, before anything else is timed
			return d, c
		}
		coldPip, _ := coldWith("pip")
		cold, c := coldWith("uv")
		dir := c.Dir()
		cache := func() *envcache.Cache {
			return envtest.Open(b, envcache.Config{Dir: dir, Resolver: "uv", UV: uv})
		}

		start := time.Now()
		env, err := cache().Environment(ctx, spec) // a new Cache: nothing in memory
		if err != nil {
			b.Fatal(err)
		}
		assemble := time.Since(start)
		imp := run(env)
		warm := time.Since(start)

		venv := filepath.Join(b.TempDir(), "venv")
		start = time.Now()
		sh := func(name string, args ...string) {
			out, err := exec.Command(name, args...).CombinedOutput()
			if err != nil {
				b.Fatalf("%s %v: %v\n%s", name, args, err, out)
			}
		}
		sh(env.Python.Path, "-m", "venv", venv)
		sh(filepath.Join(venv, "bin", "pip"), append([]string{"install", "-q", "--no-cache-dir", "--disable-pip-version-check", "pyarrow"}, spec.Requirements...)...)
		sh(filepath.Join(venv, "bin", "python"), "-c", "import "+strings.ReplaceAll(pkg, "-", "_"))
		baseline := time.Since(start)

		b.ReportMetric(cold.Seconds(), "cold-s")
		b.ReportMetric(coldPip.Seconds(), "cold-pip-resolver-s")
		b.ReportMetric(warm.Seconds(), "warm-s")
		b.ReportMetric(assemble.Seconds(), "assemble-s")
		b.ReportMetric(imp, "import-s")
		b.ReportMetric(warm.Seconds()-imp, "warm-overhead-s")
		b.ReportMetric(baseline.Seconds(), "venv-pip-s")
		b.ReportMetric(baseline.Seconds()/cold.Seconds(), "baseline/cold")
		fmt.Fprintf(os.Stderr, "add %s: cold with the pip resolver %.1fs (baseline/cold %.1fx)\n", pkg, coldPip.Seconds(), baseline.Seconds()/coldPip.Seconds())
		fmt.Fprintf(os.Stderr, "add %s: cold %.1fs, warm %.2fs (assemble %.3fs, import %.2fs, overhead %.2fs), venv+pip %.1fs, baseline/cold %.1fx\n",
			pkg, cold.Seconds(), warm.Seconds(), assemble.Seconds(), imp, warm.Seconds()-imp, baseline.Seconds(), baseline.Seconds()/cold.Seconds())
	}
}
