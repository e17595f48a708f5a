package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/lhbuild"
)

// BenchmarkProcessStart times commands as a user gets them, each a whole
// process of the real binary (built from this tree, see lhbuild), against
// `git --version` in the same run, interleaved: `lakehouse version`, and
// `lakehouse branch ls` on a data directory with a catalog. It prints p50
// and p95 wall time, the CPU time (user + system) at p50, and each one's
// p50 over git's; then the packages whose initialization takes longest
// (GODEBUG=inittrace=1) and the sum over all packages.
//
// Run: go test -tags duckdb_arrow -run '^$' -bench ProcessStart -benchtime 100x ./cli
func BenchmarkProcessStart(b *testing.B) {
	bin := lhbuild.Binary(b)
	git, err := exec.LookPath("git")
	if err != nil {
		b.Fatal("git is the baseline of this benchmark: install it (apt-get install git)")
	}
	dataDir := b.TempDir()
	env := append(os.Environ(), envDataDir+"="+dataDir, envUser+"=bench", "HOME="+dataDir)
	// A catalog with a few branches for branch ls to list.
	for _, args := range [][]string{{"checkout", "-b", "bench.dev"}, {"branch", "create", "bench.other"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("lakehouse %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	type sample struct{ wall, cpu time.Duration }
	run := func(name string, args ...string) sample {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		wall := time.Since(start)
		return sample{wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	}
	paths := []struct {
		name string
		cmd  []string
	}{
		{"git --version", []string{git, "--version"}},
		{"lakehouse version", []string{bin, "version"}},
		{"lakehouse branch ls", []string{bin, "branch", "ls"}},
	}
	samples := make([][]sample, len(paths))
	for _, p := range paths { // warm the page cache
		run(p.cmd[0], p.cmd[1:]...)
	}
	for b.Loop() {
		for i, p := range paths {
			samples[i] = append(samples[i], run(p.cmd[0], p.cmd[1:]...))
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	pct := func(ss []sample, p float64, f func(sample) time.Duration) time.Duration {
		ds := make([]time.Duration, len(ss))
		for i, s := range ss {
			ds[i] = f(s)
		}
		slices.Sort(ds)
		return ds[min(len(ds)-1, int(p*float64(len(ds))))]
	}
	wall := func(s sample) time.Duration { return s.wall }
	cpu := func(s sample) time.Duration { return s.cpu }
	base := pct(samples[0], 0.5, wall)
	fmt.Printf("\nprocess start, %d runs each, interleaved\n", len(samples[0]))
	fmt.Printf("%-22s %9s %9s %12s %8s\n", "command", "p50 ms", "p95 ms", "cpu p50 ms", "x git")
	for i, p := range paths {
		p50 := pct(samples[i], 0.5, wall)
		fmt.Printf("%-22s %9.1f %9.1f %12.1f %8.1f\n", p.name, ms(p50), ms(pct(samples[i], 0.95, wall)),
			ms(pct(samples[i], 0.5, cpu)), float64(p50)/float64(base))
		b.ReportMetric(ms(p50), strings.ReplaceAll(p.name, " ", "_")+"-p50-ms")
	}
	initTrace(b, bin, env)
}

// initTrace prints the packages of bin whose initialization takes longest,
// and the sum over all of them, from one `lakehouse version` with
// GODEBUG=inittrace=1.
func initTrace(b *testing.B, bin string, env []string) {
	cmd := exec.Command(bin, "version")
	cmd.Env = append(env, "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("lakehouse version: %v\n%s", err, stderr.String())
	}
	type pkg struct {
		name  string
		ms    float64
		bytes int64
	}
	var pkgs []pkg
	var total float64
	var totalBytes int64
	// init github.com/x/y @12 ms, 0.05 ms clock, 4472 bytes, 99 allocs
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 11 || f[0] != "init" || f[6] != "clock," {
			continue
		}
		clock, err1 := strconv.ParseFloat(f[4], 64)
		n, err2 := strconv.ParseInt(f[7], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		pkgs = append(pkgs, pkg{f[1], clock, n})
		total += clock
		totalBytes += n
	}
	slices.SortFunc(pkgs, func(x, y pkg) int { return cmp.Compare(y.ms, x.ms) })
	fmt.Printf("\ninitialization of %d packages: %.1f ms, %.1f MB (GODEBUG=inittrace=1 lakehouse version); longest:\n",
		len(pkgs), total, float64(totalBytes)/1e6)
	for _, p := range pkgs[:min(len(pkgs), 6)] {
		fmt.Printf("  %6.2f ms %8.2f MB  %s\n", p.ms, float64(p.bytes)/1e6, p.name)
	}
}
