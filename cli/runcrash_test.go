package cli

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/killpoints"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// The run crash test starts `lakehouse run` as a process again and again
// and kills it with SIGKILL at a random moment of its run (planning,
// scanning inputs into shared memory, the Python function, the SQL models,
// materializing, the merge). After each kill the target branch is either
// unchanged or holds the whole run's result, the reaper has removed the
// run folder and the functions' scratch folders, no process of the run is
// left, the catalog opens, the run is not listed as running, every run
// branch left is named by its record, nothing half-written stays in the
// data directory, and the next run succeeds.

// envRunCrashPoints sets how many kills TestRunCrashSafety makes, and
// envRunCrashWorkers in how many lakehouses at once.
const (
	envRunCrashPoints  = "LAKEHOUSE_RUN_CRASH_POINTS"
	envRunCrashWorkers = "LAKEHOUSE_RUN_CRASH_WORKERS"
)

// runCrashPoints is the default: under a minute on a loaded 2-core
// machine, where a run takes 1–2 s (200 points take about 5 minutes).
const runCrashPoints = 30

// runCrashProject: a Python model (it sleeps a little, so kills land
// inside it too), a SQL model replacing its output, and a SQL model
// appending one row per run, so the target shows how many runs merged.
var runCrashProject = map[string]string{
	"lakehouse.yml": "project:\n  name: runcrash\ndefaults:\n  python: \"3.11\"\n  namespace: sales\n",
	"models.py": `import lakehouse


@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def cleaned(data=lakehouse.Model("transactions", columns=["id", "usd", "country"])):
    import time

    print("cleaned sleeps", flush=True)
    time.sleep(0.3)
    return data
`,
	"summary.sql": "-- lakehouse: materialization=REPLACE\nSELECT country, count(*) AS n, sum(usd) AS usd FROM cleaned GROUP BY country\n",
	"merged.sql":  "-- lakehouse: materialization=APPEND\nSELECT count(*) AS n FROM summary\n",
}

func TestRunCrashSafety(t *testing.T) {
	if raceBuild {
		t.Skip("killed runs are too slow under the race detector; scripts/test.sh runs this test without -race")
	}
	points := killpoints.EnvCount(t, envRunCrashPoints, runCrashPoints)
	// Points run in parallel workers, each with its own data directory,
	// shared-memory and temporary folders (nothing of one worker's store
	// is another's): two on a machine with two cores or more once the
	// points are many.
	workers := 1
	if points >= 50 && goruntime.NumCPU() >= 2 {
		workers = 2
	}
	killpoints.Run(t, points, killpoints.EnvCount(t, envRunCrashWorkers, workers), runCrashWorker)
}

// runCrashWorker kills `lakehouse run` at points random moments in a
// lakehouse of its own.
func runCrashWorker(t *testing.T, points int) {
	le := newLakehouseEnv(t, launchers.Process, "")
	// The run's temporary files (function scratch folders, DuckDB's spill
	// folders) go to a folder of this test's own, so that anything left
	// is this test's.
	tmp, err := os.MkdirTemp("", "lakehouse-runcrash-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(tmp, 0o755)
	t.Cleanup(func() { os.RemoveAll(tmp) })
	le.env["TMPDIR"] = tmp
	le.env[envRunCache] = "off"
	project := t.TempDir()
	for name, text := range runCrashProject {
		if err := os.WriteFile(filepath.Join(project, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rc := &runCrash{le: le, project: project, tmp: tmp}
	rc.rows = rc.count("sales.transactions")

	// A first run in-process warms the environment; a second as a process
	// measures how long a run takes.
	le.mustLH("run", "-p", project, "--preview", "off")
	rc.merged = 1
	rc.checkMerged(t)
	started := time.Now()
	rc.runToEnd(t)
	took := time.Since(started)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d kill points, a run takes %s", seed, points, took.Round(time.Millisecond))
	rng := rand.New(rand.NewPCG(seed, 3))
	unchanged, merged := 0, 0
	phases := map[string]int{}
	for k := range points {
		delay := time.Duration(rng.Int64N(int64(took) * 11 / 10))
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("kill point %d at %s (seed %d): %s", k, delay.Round(time.Millisecond), seed, fmt.Sprintf(format, args...))
		}
		didMerge, phase := rc.kill(delay, fail)
		phases[phase]++
		if didMerge {
			merged++
		} else {
			unchanged++
		}
		// Every few kills, and after the last, a run goes to its end; its
		// time keeps the kill points spread over a whole run as the load
		// of the machine (other workers) changes.
		if k%5 == 4 || k == points-1 {
			started := time.Now()
			rc.runToEnd(t)
			took = (took + time.Since(started)) / 2
		}
	}
	t.Logf("%d kills left the target unchanged, %d after the merge; kills by the run's last line of output: %v", unchanged, merged, phases)
}

// runPhase names the part of a run its output shows it was in.
func runPhase(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	switch {
	case last == "":
		return "starting"
	case strings.Contains(last, "succeeded"):
		return "ended"
	case strings.HasPrefix(last, "run "):
		return "scanning"
	case strings.HasPrefix(last, "cleaned  running") || strings.Contains(last, "[cleaned]"):
		return "function"
	case strings.HasPrefix(last, "merged") && strings.Contains(last, " done "):
		return "merging"
	}
	return "sql"
}

type runCrash struct {
	le      *lakehouseEnv
	project string
	tmp     string
	rows    int // rows of sales.transactions
	merged  int // runs merged into tester.dev
}

// start starts `lakehouse run` as a process in a process group of its own.
func (rc *runCrash) start() (*exec.Cmd, *crashOutput) {
	rc.le.t.Helper()
	cmd := exec.Command(cliBinary(), "run", "-p", rc.project, "--preview", "off")
	cmd.Env = append(os.Environ(), envTestAsCLI+"=1")
	for k, v := range rc.le.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &crashOutput{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		rc.le.t.Fatal(err)
	}
	return cmd, out
}

// runToEnd runs once to its end; the run must succeed and merge.
func (rc *runCrash) runToEnd(t *testing.T) {
	t.Helper()
	cmd, out := rc.start()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("a run after the kills: %v\n%s", err, out)
	}
	rc.merged++
	rc.checkMerged(t)
	rc.checkClean(cmd.Process.Pid, nil, func(format string, args ...any) { t.Helper(); t.Fatalf(format, args...) })
}

// kill starts a run, kills it after delay and checks what it left. It
// reports whether the run had merged, and the phase the kill hit.
func (rc *runCrash) kill(delay time.Duration, fail func(string, ...any)) (bool, string) {
	le := rc.le
	before := le.state("tester.dev")
	head := rc.head()
	cmd, out := rc.start()
	time.Sleep(delay)
	procs := descendants(cmd.Process.Pid)
	cmd.Process.Signal(syscall.SIGKILL)
	exited := cmd.Wait() == nil
	phase := runPhase(out.String())
	pid := cmd.Process.Pid
	rc.checkClean(pid, procs, func(format string, args ...any) {
		fail(format+"\nrun output:\n%s", append(args, out)...)
	})
	if _, errOut, code := le.lh("branch", "ls"); code != 0 {
		fail("branch ls after the kill: exit %d: %s", code, errOut)
	}
	didMerge := false
	if now := rc.head(); now == head {
		if after := le.state("tester.dev"); after != before {
			fail("tester.dev has its old head but changed:\n%s\nvs\n%s", before, after)
		}
		if exited {
			fail("the run ended before the kill without merging:\n%s", out)
		}
	} else {
		rc.merged++
		didMerge = true
		var b struct {
			Commit struct {
				Parents    []string          `json:"parents"`
				Properties map[string]string `json:"properties"`
			} `json:"commit"`
		}
		mustJSON(le.t, le.mustLH("branch", "get", "tester.dev", "-O", "json"), &b)
		if len(b.Commit.Parents) == 0 || b.Commit.Parents[0] != head || b.Commit.Properties["lakehouse.run-id"] == "" {
			fail("tester.dev moved from %s to a commit that is not one run's merge: parents %v, properties %v",
				head, b.Commit.Parents, b.Commit.Properties)
		}
		rc.checkMerged(le.t)
	}
	// The killed run is not listed as running, and reading the records
	// leaves no half-written one.
	ls, errOut, code := le.lh("runs", "ls")
	if code != 0 {
		fail("runs ls after the kill: exit %d: %s", code, errOut)
	}
	runs, err := runrec.Open(filepath.Join(le.dataDir, "runs"))
	if err != nil {
		fail("%v", err)
	}
	recs, err := runs.List()
	if err != nil {
		fail("runs: %v", err)
	}
	for _, r := range recs {
		if r.Live() == runrec.StatusRunning {
			fail("run %s is listed as running after its process was killed:\n%s", r.ID, ls)
		}
		if r.Live() == runrec.StatusKilled && (r.Ended.IsZero() || r.Duration < 0) {
			fail("killed run %s: ended %v, duration %.2f", r.ID, r.Ended, r.Duration)
		}
	}
	// Every run branch left is named by its record (so it is pruned
	// later, or removed with `runs rm`).
	kept := map[string]bool{}
	for _, r := range recs {
		if r.BranchKept {
			kept[r.RunBranch] = true
		}
	}
	var branches []struct {
		Name string `json:"name"`
	}
	mustJSON(le.t, le.mustLH("branch", "ls", "-O", "json"), &branches)
	for _, b := range branches {
		if strings.Contains(b.Name, ".run-") && !kept[b.Name] {
			fail("run branch %s is not named by a run record: nothing removes it", b.Name)
		}
	}
	if tmps := tempFiles(le.dataDir); len(tmps) > 0 {
		fail("half-written files left in the data directory after runs ls:\n  %s", strings.Join(tmps, "\n  "))
	}
	return didMerge, phase
}

// tempFiles lists what looks half-written under dir: temporary files and
// folders of the run records, the recorded code and the catalog.
func tempFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		n := d.Name()
		if strings.HasPrefix(n, ".new-") || strings.HasPrefix(n, ".tmp") || strings.HasPrefix(n, ".result-") ||
			strings.HasSuffix(n, ".tmp") || strings.Contains(n, ".tmp-") {
			out = append(out, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	return out
}

// checkClean waits up to 10 s for the reaper and fails if anything of the
// run of process pid is left: its run folder in shared memory, its
// temporary files, or a process (one of procs, taken just before the
// kill, or one in its process group, or one working in its scratch
// folders).
func (rc *runCrash) checkClean(pid int, procs []procID, fail func(string, ...any)) {
	scratch := process.ScratchPrefix(pid)
	var left []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		left = left[:0]
		for _, dir := range []string{rc.le.shmDir, rc.tmp} {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				left = append(left, filepath.Join(dir, e.Name()))
			}
		}
		for _, p := range procs {
			if p.alive() {
				left = append(left, fmt.Sprintf("process %d (%s), started by the run", p.pid, p.comm()))
			}
		}
		for _, p := range allProcs() {
			if p.pgid == pid || p.mentions(scratch) || p.mentions(rc.le.shmDir) {
				left = append(left, fmt.Sprintf("process %d (%s) of the run", p.pid, p.comm()))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			fail("left 10 s after the run ended:\n  %s", strings.Join(left, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (rc *runCrash) head() string {
	var b struct {
		Head string `json:"head"`
	}
	mustJSON(rc.le.t, rc.le.mustLH("branch", "get", "tester.dev", "-O", "json"), &b)
	return b.Head
}

func (rc *runCrash) count(table string) int {
	out := rc.le.mustLH("query", "SELECT count(*) FROM "+table, "-r", "tester.dev", "-O", "csv")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	n, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil {
		rc.le.t.Fatalf("count of %s: %q", table, out)
	}
	return n
}

// checkMerged checks the target holds the result of rc.merged whole runs.
func (rc *runCrash) checkMerged(t *testing.T) {
	t.Helper()
	want := fmt.Sprintf("cleaned,summary,merged,appended\n%d,%d,%d,%d\n", rc.rows, rc.rows, rc.merged, rc.merged)
	got := rc.le.mustLH("query", "SELECT (SELECT count(*) FROM sales.cleaned) AS cleaned, (SELECT sum(n) FROM sales.summary) AS summary, "+
		"(SELECT count(*) FROM sales.merged) AS merged, (SELECT count(*) FROM sales.merged WHERE n = (SELECT count(*) FROM sales.summary)) AS appended",
		"-r", "tester.dev", "-O", "csv")
	if got != want {
		t.Fatalf("tester.dev after %d merged runs:\n%s\nwant\n%s", rc.merged, got, want)
	}
}

// crashOutput collects a run's output while the test reads it.
type crashOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *crashOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *crashOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// procID is a process by its pid and its start time (pids are reused).
type procID struct {
	pid, ppid, pgid int
	start           string
}

func readProc(pid int) (procID, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procID{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procID{}, false
	}
	// After the command: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime priority nice
	// threads itrealvalue starttime.
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" {
		return procID{}, false
	}
	p := procID{pid: pid, start: f[19]}
	p.ppid, _ = strconv.Atoi(f[1])
	p.pgid, _ = strconv.Atoi(f[2])
	return p, true
}

func allProcs() []procID {
	ents, _ := os.ReadDir("/proc")
	var out []procID
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// descendants lists pid and every process below it.
func descendants(pid int) []procID {
	all := allProcs()
	in := map[int]bool{pid: true}
	var out []procID
	for changed := true; changed; {
		changed = false
		for _, p := range all {
			if !in[p.pid] && in[p.ppid] {
				in[p.pid] = true
				changed = true
			}
		}
	}
	for _, p := range all {
		if in[p.pid] {
			out = append(out, p)
		}
	}
	return out
}

func (p procID) alive() bool {
	q, ok := readProc(p.pid)
	return ok && q.start == p.start
}

func (p procID) comm() string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// mentions reports whether the process's command line, environment or
// working folder mention s.
func (p procID) mentions(s string) bool {
	for _, f := range []string{"cmdline", "environ"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", p.pid, f))
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", p.pid))
	return strings.Contains(cwd, s)
}
