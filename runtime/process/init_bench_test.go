package process

import (
	"io"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkInit isolates the cost of the function's init: /bin/true
// started directly (in a network namespace, as the unisolated launcher
// does as root) and through the init with each part of the sandbox.
//
// Run: go test -run '^$' -bench Init -benchtime 100x ./runtime/process
// (BENCH_PYTHON=/path/to/python3 starts python -I -S -c pass instead).
func BenchmarkInit(b *testing.B) {
	if !Probe().Root {
		b.Skip("needs root")
	}
	dir := b.TempDir()
	base := sandbox{Args: benchArgs, Dir: "/", UID: -1, GID: -1,
		ReadDirs: []string{"/usr", "/lib", "/lib64", "/bin", "/root/.pyenv/versions"}, ReadFiles: []string{"/dev/null"}, WriteDirs: []string{dir}}
	variants := []struct {
		name string
		sb   func() *sandbox
	}{
		{"direct", nil},
		{"init", func() *sandbox { s := base; return &s }},
		{"init+ns", func() *sandbox { s := base; s.Namespaces = true; return &s }},
		{"init+ns+uid", func() *sandbox { s := base; s.Namespaces, s.UID, s.GID = true, DefaultUID, DefaultUID; return &s }},
		{"init+ns+uid+landlock", func() *sandbox {
			s := base
			s.Namespaces, s.UID, s.GID, s.Landlock = true, DefaultUID, DefaultUID, Probe().Landlock
			return &s
		}},
	}
	times := make([][]time.Duration, len(variants))
	for i := 0; i < b.N; i++ {
		for j, v := range variants {
			start := time.Now()
			if v.sb == nil {
				cmd := exec.Command(benchArgs[0], benchArgs[1:]...)
				cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
			} else {
				cmd, status, life, err := v.sb().command(false)
				if err != nil {
					b.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				for _, f := range cmd.ExtraFiles {
					f.Close()
				}
				out, _ := io.ReadAll(status)
				cmd.Wait()
				life.Close()
				status.Close()
				if string(out) != "exit 0\n" {
					b.Fatalf("%s: %q", v.name, out)
				}
			}
			times[j] = append(times[j], time.Since(start))
		}
	}
	for j, v := range variants {
		s := slices.Clone(times[j])
		slices.Sort(s)
		b.ReportMetric(float64(s[len(s)/2].Microseconds())/1000, v.name+"-p50-ms")
	}
}

// benchArgs is the command BenchmarkInit starts: the interpreter of
// $BENCH_PYTHON (with -I -S -c pass) or /bin/true.
var benchArgs = func() []string {
	if p := os.Getenv("BENCH_PYTHON"); p != "" {
		return []string{p, "-I", "-S", "-c", "pass"}
	}
	return []string{"/bin/true"}
}()
