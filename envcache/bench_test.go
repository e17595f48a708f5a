package envcache_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
)

// BenchmarkColdAdd is "add a package" on a machine with no uv: PATH
// without uv, no LAKEHOUSE_UV, no pip or uv cache, no download cache, a
// package cache with nothing installed. For each spec it measures in one
// run:
//
//	first     an empty package cache: the cache installs its own uv
//	          (uvtool.go), resolves with it, installs
//	cold      the same with the cache's uv already installed and the
//	          interpreter's wheel tags known (a new package on a machine
//	          that ran lakehouse before), no package installed
//	cold-pip  cold with the pip resolver (LAKEHOUSE_RESOLVER=pip)
//	venv+pip  python -m venv, then pip install --no-cache-dir of the
//	          same requirements (pyarrow included: every environment has
//	          it for the runner)
//
// each until the environment is usable, and the same followed by the
// first `import` of the package (the first run). It prints where the cold
// time goes: resolution (with speculative installs running meanwhile)
// and the install of each package.
//
// Run: go test -run '^$' -bench ColdAdd -benchtime 1x ./envcache
// (BENCH_SPECS="six;requests;pandas" by default; specs separated by ";",
// requirements within one by ",").
func BenchmarkColdAdd(b *testing.B) {
	specs := os.Getenv("BENCH_SPECS")
	if specs == "" {
		specs = "six;requests;pandas"
	}
	b.Setenv("PATH", pathWithoutUV())
	b.Setenv("LAKEHOUSE_UV", "")
	b.Setenv("LAKEHOUSE_RESOLVER", "")
	b.Setenv("PIP_NO_CACHE_DIR", "1")
	ctx := context.Background()
	py, ok := envcache.PythonFor(envcache.FindPythons(envcache.PythonSearch{}), "3.11")
	if !ok {
		b.Fatal("no Python 3.11")
	}
	python := py.Path // the interpreter the cache picks, for the venv too
	for _, s := range strings.Split(specs, ";") {
		reqs := strings.Split(s, ",")
		spec := envcache.Spec{Python: "3.11", Requirements: reqs}
		mod := strings.ReplaceAll(reqNameOnly(reqs[0]), "-", "_")
		b.Run(strings.Join(reqs, "+"), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				// What a machine that ran lakehouse before keeps besides
				// packages: the cache's own uv and the interpreter's wheel
				// tags, moved from cache to cache.
				var prev string
				cold := func(resolver string, keep bool) (ready, firstRun time.Duration, log string) {
					b.Setenv("UV_CACHE_DIR", b.TempDir())
					b.Setenv("LAKEHOUSE_RESOLVER", resolver)
					dir := b.TempDir()
					if keep {
						for _, sub := range []string{"tools", "interpreters"} {
							if err := os.Rename(filepath.Join(prev, sub), filepath.Join(dir, sub)); err != nil {
								b.Fatal(err)
							}
						}
					}
					var logs bytes.Buffer
					c := envtest.Open(b, envcache.Config{Dir: dir,
						Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
					start := time.Now()
					env, err := c.Environment(ctx, spec)
					if err != nil {
						b.Fatal(err)
					}
					ready = time.Since(start)
					importIn(b, env.Python.Path, env.Paths(), mod)
					firstRun = time.Since(start)
					c.Wait(ctx) // background bytecode, before anything else is timed
					prev = dir
					return ready, firstRun, logs.String()
				}
				first, _, firstLog := cold("", false)
				coldUV, coldUVRun, log := cold("", true)
				coldPip, coldPipRun, _ := cold("pip", true)

				venv := filepath.Join(b.TempDir(), "venv")
				start := time.Now()
				sh(b, python, "-m", "venv", venv)
				sh(b, filepath.Join(venv, "bin", "pip"), append([]string{"install", "-q", "--no-cache-dir",
					"--disable-pip-version-check", "pyarrow"}, reqs...)...)
				base := time.Since(start)
				importIn(b, filepath.Join(venv, "bin", "python"), nil, mod)
				baseRun := time.Since(start)

				b.ReportMetric(first.Seconds(), "first-s")
				b.ReportMetric(coldUV.Seconds(), "cold-s")
				b.ReportMetric(coldPip.Seconds(), "cold-pip-s")
				b.ReportMetric(base.Seconds(), "venv-pip-s")
				b.ReportMetric(base.Seconds()/coldUV.Seconds(), "venv-pip/cold")
				name := strings.Join(reqs, "+")
				load, _ := os.ReadFile("/proc/loadavg")
				fmt.Fprintf(os.Stderr, "add %s, PATH without uv (%s), load average %s:\n", name, os.Getenv("PATH"),
					strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
				fmt.Fprintf(os.Stderr, "  ready:     first %.2fs (installs uv %s)  cold %.2fs  cold-pip %.2fs  venv+pip %.2fs  venv+pip/cold %.1fx  venv+pip/first %.1fx  venv+pip/cold-pip %.1fx\n",
					first.Seconds(), envcache.UVVersion, coldUV.Seconds(), coldPip.Seconds(), base.Seconds(),
					base.Seconds()/coldUV.Seconds(), base.Seconds()/first.Seconds(), base.Seconds()/coldPip.Seconds())
				fmt.Fprintf(os.Stderr, "  +import:   cold %.2fs  cold-pip %.2fs  venv+pip %.2fs  venv+pip/cold %.1fx\n",
					coldUVRun.Seconds(), coldPipRun.Seconds(), baseRun.Seconds(), baseRun.Seconds()/coldUVRun.Seconds())
				fmt.Fprintf(os.Stderr, "  first, where the time goes: %s\n", breakdown(firstLog))
				fmt.Fprintf(os.Stderr, "  cold, where the time goes: %s\n", breakdown(log))
				if os.Getenv("BENCH_LOG") != "" {
					fmt.Fprintf(os.Stderr, "first:\n%scold:\n%s", firstLog, log)
				}
			}
		})
	}
}

var (
	logUV        = regexp.MustCompile(`msg="installed uv" .*took=(\S+)`)
	logResolved  = regexp.MustCompile(`msg=resolved .*resolver=(\w+) .*took=(\S+)`)
	logInstalled = regexp.MustCompile(`msg="installed package" name=(\S+) version=\S+ hash=\S+ took=(\S+)`)
)

// breakdown summarizes the cache's debug log: the resolution and the
// slowest installs (which overlap the resolution and each other).
func breakdown(log string) string {
	var parts []string
	if m := logUV.FindStringSubmatch(log); m != nil {
		parts = append(parts, "install uv "+m[1])
	}
	if m := logResolved.FindStringSubmatch(log); m != nil {
		parts = append(parts, fmt.Sprintf("resolve (%s) %s", m[1], m[2]))
	}
	type inst struct {
		name string
		d    time.Duration
	}
	var all []inst
	for _, m := range logInstalled.FindAllStringSubmatch(log, -1) {
		d, _ := time.ParseDuration(m[2])
		all = append(all, inst{m[1], d})
	}
	for len(all) > 0 && len(parts) < 5 {
		best := 0
		for i := range all {
			if all[i].d > all[best].d {
				best = i
			}
		}
		parts = append(parts, fmt.Sprintf("install %s %s", all[best].name, all[best].d.Round(time.Millisecond)))
		all = append(all[:best], all[best+1:]...)
	}
	return strings.Join(parts, ", ")
}

func reqNameOnly(r string) string {
	return regexp.MustCompile(`^[A-Za-z0-9._-]+`).FindString(strings.TrimSpace(r))
}

// importIn imports mod with python, paths first on sys.path.
func importIn(b *testing.B, python string, paths []string, mod string) {
	b.Helper()
	code := fmt.Sprintf("import sys; sys.path[:0] = %s; import %s", pyList(paths), mod)
	// -B as the runner: the folders are read-only to functions (the
	// benchmark runs as their owner).
	sh(b, python, "-I", "-B", "-c", code)
}

func pyList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func sh(b *testing.B, name string, args ...string) {
	b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
