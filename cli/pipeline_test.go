package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
	"github.com/lakehouse-dev/lakehouse/runtime/containerd/ctrdtest"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// envTestCLIBin names the program the tests start as lakehouse
// processes: by default this test binary (os.Args[0]), which runs Main
// when envTestAsCLI is set. scripts/test.sh's race step points it at the
// package's plain test binary: a process of the race build runs several
// times slower, and the race step starts hundreds. The tests run
// in-process under -race all the same (and what the processes run, the
// in-process tests run too).
const envTestCLIBin = "LAKEHOUSE_TEST_CLI_BIN"

// cliBinary is the program tests start as a lakehouse process.
func cliBinary() string {
	if b := os.Getenv(envTestCLIBin); b != "" {
		return b
	}
	return os.Args[0]
}

// TestMain lets the test binary act as the lakehouse command
// ($LAKEHOUSE_TEST_AS_CLI=1), so signal tests run a real process without
// building the binary again.
func TestMain(m *testing.M) {
	if os.Getenv(envTestAsCLI) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Main(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	// Transcripts print times in UTC. Set once, before any goroutine
	// runs: a test that swapped time.Local raced with gRPC's transport
	// goroutines of earlier tests reading it.
	time.Local = time.UTC
	os.Exit(m.Run())
}

// lakehouseEnv is a data directory with the sample table on tester.dev,
// run by the CLI in-process (lh) or as a process (start).
type lakehouseEnv struct {
	t       *testing.T
	dataDir string
	shmDir  string
	// stateDir is the containerd launcher's state folder (containerd
	// only).
	stateDir string
	env      map[string]string
}

func newLakehouseEnv(t *testing.T, launcher, socket string) *lakehouseEnv {
	t.Helper()
	return newLakehouseEnvWith(t, launcher, socket, nil)
}

// newLakehouseEnvWith is newLakehouseEnv with extra environment variables
// (a warehouse on S3).
func newLakehouseEnvWith(t *testing.T, launcher, socket string, extra map[string]string) *lakehouseEnv {
	t.Helper()
	dataDir := t.TempDir()
	shm, err := os.MkdirTemp("/dev/shm", "lakehouse-clitest-")
	if err != nil {
		t.Fatalf("/dev/shm is needed for runs: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	le := &lakehouseEnv{t: t, dataDir: dataDir, shmDir: shm, env: map[string]string{
		envDataDir: dataDir, envUser: "tester", "HOME": dataDir,
		envEnvCacheDir: filepath.Join(envtest.Root(), "envcache-cli"),
		envShmDir:      shm,
		envLauncher:    launcher,
	}}
	if socket != "" {
		le.env[launchers.SocketEnv] = socket
		// The launcher's and runc's state in a folder of the test's, not
		// in /dev/shm/lakehouse-containerd.
		le.stateDir = filepath.Join(t.TempDir(), "state")
		le.env[launchers.StateDirEnv] = le.stateDir
	}
	if v := os.Getenv("PIP_INDEX_URL"); v != "" {
		le.env["PIP_INDEX_URL"] = v
	}
	for k, v := range extra {
		le.env[k] = v
	}
	testdata, _ := filepath.Abs(filepath.Join("..", "testdata"))
	for _, args := range [][]string{
		{"checkout", "-b", "tester.dev"},
		{"namespace", "create", "sales"},
		{"table", "import", "sales.transactions", "--from", filepath.Join(testdata, "sample", "transactions")},
	} {
		le.mustLH(args...)
	}
	return le
}

// use makes t the test that le's checks fail (a subtest must not fail its
// parent) until the returned function restores the previous one.
func (le *lakehouseEnv) use(t *testing.T) func() {
	prev := le.t
	le.t = t
	return func() { le.t = prev }
}

func (le *lakehouseEnv) lh(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Getenv: func(k string) string { return le.env[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	code = run(ctx, append([]string{"lakehouse"}, args...), env)
	return o.String(), e.String(), code
}

func (le *lakehouseEnv) mustLH(args ...string) string {
	le.t.Helper()
	out, errOut, code := le.lh(args...)
	if code != 0 {
		le.t.Fatalf("lakehouse %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// start runs the test binary as the lakehouse command.
func (le *lakehouseEnv) start(args ...string) (*exec.Cmd, *syncBuffer, *lineWaiter) {
	le.t.Helper()
	cmd := exec.Command(cliBinary(), args...)
	cmd.Env = append(os.Environ(), envTestAsCLI+"=1")
	for k, v := range le.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	lw := &lineWaiter{lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lw.lines <- sc.Text()
		}
		close(lw.lines)
	}()
	if err := cmd.Start(); err != nil {
		le.t.Fatal(err)
	}
	go func() { cmd.Wait(); pw.Close() }()
	return cmd, stderr, lw
}

type lineWaiter struct {
	lines chan string
	seen  []string
}

func (w *lineWaiter) waitFor(t *testing.T, substr string, timeout time.Duration, stderr *syncBuffer) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				t.Fatalf("output ended before %q:\n%s\n%s", substr, strings.Join(w.seen, "\n"), stderr)
			}
			w.seen = append(w.seen, l)
			if strings.Contains(l, substr) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q after %s:\n%s", substr, timeout, strings.Join(w.seen, "\n"))
		}
	}
}

// state is what a failed run must leave untouched: the target's head and
// tables, and the bytes of every file in the warehouse.
func (le *lakehouseEnv) state(branch string) string {
	le.t.Helper()
	var b strings.Builder
	b.WriteString(le.mustLH("branch", "get", branch, "-O", "json"))
	b.WriteString(le.mustLH("table", "ls", "-r", branch, "-O", "json"))
	b.WriteString(le.mustLH("log", branch, "-O", "json"))
	return b.String()
}

func (le *lakehouseEnv) warehouseFiles() map[string]string {
	out := map[string]string{}
	filepath.WalkDir(filepath.Join(le.dataDir, "warehouse"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		s := sha256.Sum256(b)
		out[p] = hex.EncodeToString(s[:])
		return nil
	})
	return out
}

func (le *lakehouseEnv) checkFilesUnchanged(before map[string]string) {
	le.t.Helper()
	after := le.warehouseFiles()
	for p, h := range before {
		if after[p] != h {
			le.t.Errorf("warehouse file %s changed or vanished", p)
		}
	}
}

// checkNoLeftovers fails if a run folder is left in shared memory or a
// container in the daemon.
func (le *lakehouseEnv) checkNoLeftovers(socket string, wait time.Duration) {
	le.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ents, _ := os.ReadDir(le.shmDir)
		n := 0
		if socket != "" {
			n = countContainers(le.t, socket)
		}
		if len(ents) == 0 && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			le.t.Fatalf("left behind: shm %v, %d container(s)%s", names, n, describeContainers(le.t, socket))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkStateDirGone fails if the containerd launcher's state folder
// outlived the command that used it: the last launcher to close removes
// it, as it removes /dev/shm/lakehouse-containerd.
func (le *lakehouseEnv) checkStateDirGone() {
	le.t.Helper()
	if le.stateDir == "" {
		return
	}
	var left []string
	filepath.WalkDir(le.stateDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil {
			left = append(left, path)
		}
		return nil
	})
	if len(left) > 0 {
		le.t.Errorf("the containerd launcher left its state folder: %v", left)
	}
}

// describeContainers names the containers left, their labels and tasks,
// for a failure message.
func describeContainers(t *testing.T, socket string) string {
	if socket == "" {
		return ""
	}
	c, err := containerd.New(socket, containerd.WithDefaultNamespace("lakehouse"))
	if err != nil {
		return ""
	}
	defer c.Close()
	ctx := context.Background()
	ctrs, _ := c.Containers(ctx)
	var b strings.Builder
	for _, ctr := range ctrs {
		labels, _ := ctr.Labels(ctx)
		fmt.Fprintf(&b, "\n  %s %v", ctr.ID(), labels)
		if task, err := ctr.Task(ctx, nil); err == nil {
			st, _ := task.Status(ctx)
			fmt.Fprintf(&b, " task pid %d %s", task.Pid(), st.Status)
		}
	}
	return b.String()
}

func countContainers(t *testing.T, socket string) int {
	c, err := containerd.New(socket, containerd.WithDefaultNamespace("lakehouse"))
	if err != nil {
		t.Fatalf("containerd: %v", err)
	}
	defer c.Close()
	ctrs, err := c.Containers(context.Background())
	if err != nil {
		t.Fatalf("containerd: %v", err)
	}
	return len(ctrs)
}

func testdataDir(t *testing.T, parts ...string) string {
	p, err := filepath.Abs(filepath.Join(append([]string{"..", "testdata"}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// expectedReport computes sales.report of the e2e pipeline from the CSV
// files, independently of lakehouse.
func expectedReport(t *testing.T, minUSD float64) (rows map[string][2]float64, bigSpenders int, all int) {
	rows = map[string][2]float64{}
	byCustomer := map[string]float64{}
	files, _ := filepath.Glob(testdataDir(t, "sample", "transactions", "*.csv"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(fh).ReadAll()
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs[1:] {
			all++
			usd, _ := strconv.ParseFloat(r[2], 64)
			if usd < minUSD {
				continue
			}
			c := strings.ToLower(r[3])
			v := rows[c]
			rows[c] = [2]float64{v[0] + usd, v[1] + 1}
			byCustomer[r[4]] += usd
		}
	}
	for _, v := range byCustomer {
		if v > 500 {
			bigSpenders++
		}
	}
	return rows, bigSpenders, all
}

func (le *lakehouseEnv) checkReport(ref string, minUSD float64) {
	le.t.Helper()
	out := le.mustLH("query", "SELECT country, usd, n, big_spenders, all_rows FROM sales.report ORDER BY country", "-r", ref, "-O", "json")
	var got []struct {
		Country     string  `json:"country"`
		USD         float64 `json:"usd"`
		N           int     `json:"n"`
		BigSpenders int     `json:"big_spenders"`
		AllRows     int     `json:"all_rows"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		le.t.Fatalf("%v: %s", err, out)
	}
	want, big, all := expectedReport(le.t, minUSD)
	if len(got) != len(want) {
		le.t.Fatalf("report has %d rows, want %d: %s", len(got), len(want), out)
	}
	for _, g := range got {
		w, ok := want[g.Country]
		if !ok || math.Abs(g.USD-w[0]) > 1e-6 || float64(g.N) != w[1] || g.BigSpenders != big || g.AllRows != all {
			le.t.Errorf("report row %+v, want usd %.2f n %v big %d all %d", g, w[0], w[1], big, all)
		}
	}
}

func (le *lakehouseEnv) lastRun() *runrec.Record {
	le.t.Helper()
	runs, err := runrec.Open(filepath.Join(le.dataDir, "runs"))
	if err != nil {
		le.t.Fatal(err)
	}
	recs, err := runs.List()
	if err != nil || len(recs) == 0 {
		le.t.Fatalf("no run records: %v", err)
	}
	return recs[0]
}

func startContainerd(t *testing.T) string {
	t.Helper()
	socket, stop, err := ctrdtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return socket
}

// TestPipelineEndToEnd runs the e2e pipeline on both launchers: pandas
// 1.5.3 on Python 3.10 and pandas 2.2.3 on Python 3.11, two SQL models,
// an expectation, fan-out and fan-in; the report is checked value by value
// against the CSV files; the second run reuses every model; --param
// changes what a filter keeps; a rerun after the branch moved on
// reproduces the original outputs.
func TestPipelineEndToEnd(t *testing.T) {
	for _, launcher := range []string{launchers.Process, launchers.Containerd} {
		t.Run(launcher, func(t *testing.T) {
			socket := ""
			if launcher == launchers.Containerd {
				socket = startContainerd(t)
			}
			le := newLakehouseEnv(t, launcher, socket)
			project := testdataDir(t, "pipelines", "e2e")
			before := le.mustLH("branch", "get", "main", "-O", "json")
			out := le.mustLH("run", "-p", project)
			for _, want := range []string{"[clean]", "clean: 395 rows with pandas 2.2.3 on Python 3.11",
				"by_country: pandas 1.5.3 on Python 3.10", "succeeded", "(sales.by_country, sales.report)"} {
				if !strings.Contains(out, want) {
					t.Errorf("run output lacks %q:\n%s", want, out)
				}
			}
			le.checkReport("tester.dev", 5)
			le.checkNoLeftovers(socket, 5*time.Second)
			le.checkStateDirGone()
			if after := le.mustLH("branch", "get", "main", "-O", "json"); after != before {
				t.Errorf("main moved")
			}
			first := le.lastRun()
			if first.Status != runrec.StatusSucceeded || first.Launcher != launcher || len(first.Envs) != 3 || first.BranchKept {
				t.Fatalf("record: status %s launcher %s envs %d kept %v", first.Status, first.Launcher, len(first.Envs), first.BranchKept)
			}
			logs, _, _ := le.lh("runs", "logs", first.ID)
			if !strings.Contains(logs, "by_country: pandas 1.5.3") {
				t.Errorf("runs logs lacks the function's line:\n%s", logs)
			}
			var head struct {
				Commit struct {
					Properties map[string]string `json:"properties"`
				} `json:"commit"`
			}
			mustJSON(t, le.mustLH("branch", "get", "tester.dev", "-O", "json"), &head)
			if head.Commit.Properties["lakehouse.run-id"] != first.ID {
				t.Errorf("head commit properties %v, want the run id %s", head.Commit.Properties, first.ID)
			}
			if launcher == launchers.Containerd {
				return // the rest is launcher-independent
			}

			// Unchanged: every model comes from the result cache.
			out = le.mustLH("run", "-p", project, "--preview", "off")
			for _, m := range []string{"clean", "by_country", "big_spenders", "report"} {
				if !strings.Contains(out, m+": reused the output of run "+first.ID) {
					t.Errorf("second run did not reuse %s:\n%s", m, out)
				}
			}
			le.checkReport("tester.dev", 5)
			out = le.mustLH("run", "-p", project, "--no-cache", "--preview", "off")
			if strings.Contains(out, "reused") {
				t.Errorf("--no-cache reused a model:\n%s", out)
			}
			// A parameter reaches the filter of a Python model's input.
			le.mustLH("run", "-p", project, "--param", "min_usd=100", "--preview", "off")
			le.checkReport("tester.dev", 100)

			// The branch moves on (more rows, another run); the rerun reads
			// the first run's start commit and reproduces its outputs.
			le.mustLH("table", "import", "sales.transactions", "--from", testdataDir(t, "sample", "transactions_more"))
			le.mustLH("run", "-p", project, "--preview", "off")
			out = le.mustLH("rerun", first.ID, "-r", "tester.check")
			if !strings.Contains(out, "all 2 output(s) match run "+first.ID) && !strings.Contains(out, "output(s) match run "+first.ID) {
				t.Errorf("rerun output:\n%s", out)
			}
			le.checkReport("tester.check", 5)
			re := le.lastRun()
			if re.RerunOf != first.ID || len(re.Matches) == 0 {
				t.Errorf("rerun record: rerun_of %q matches %v", re.RerunOf, re.Matches)
			}
			for m, ok := range re.Matches {
				if !ok {
					t.Errorf("rerun output %s differs", m)
				}
			}
			for _, m := range []string{"by_country", "report"} {
				a := le.mustLH("query", "SELECT * FROM sales."+m+" ORDER BY ALL", "-r", "tester.check", "-O", "csv", "--all-rows")
				b := le.mustLH("query", "SELECT * FROM sales."+m+" ORDER BY ALL", "-r", "@"+first.EndCommit, "-O", "csv", "--all-rows")
				if a != b {
					t.Errorf("rerun's %s differs from the original:\n%s\nvs\n%s", m, a, b)
				}
			}
			// A rerun into a branch whose outputs changed since it started
			// (the default target, where later runs wrote them, and
			// tester.check again) writes on top of the branch's head: no
			// merge conflict.
			for _, args := range [][]string{{"rerun", first.ID}, {"rerun", first.ID, "-r", "tester.check"}} {
				if out, errOut, code := le.lh(append(args, "--preview", "off")...); code != 0 || !strings.Contains(out, "output(s) match run "+first.ID) {
					t.Errorf("lakehouse %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
				}
			}
			le.checkReport("tester.dev", 5)
		})
	}
}

// TestPipelineFailures fails a run in every way a run can fail and checks
// that the target branch and its files are untouched, the run is recorded
// as failed, and nothing is left in /dev/shm or in containerd.
func TestPipelineFailures(t *testing.T) {
	for _, launcher := range []string{launchers.Process, launchers.Containerd} {
		t.Run(launcher, func(t *testing.T) {
			socket := ""
			if launcher == launchers.Containerd {
				socket = startContainerd(t)
			}
			le := newLakehouseEnv(t, launcher, socket)
			project := testdataDir(t, "pipelines", "failing")
			for _, c := range []struct {
				fail, want string
				strict     bool
			}{
				{"exception", "model second failed: ZeroDivisionError: division by zero", false},
				{"oom", "model second exceeded its memory limit of 256 MiB", false},
				{"timeout", "model second timed out after 3s and was killed", false},
				{"crash", "model second crashed: the interpreter was killed by signal SIGSEGV", false},
				{"expectation", "expectation never_fails_unless_asked failed", true},
			} {
				t.Run(c.fail, func(t *testing.T) {
					defer le.use(t)()
					before, files := le.state("tester.dev"), le.warehouseFiles()
					args := []string{"run", "-p", project, "--param", "fail=" + c.fail, "--preview", "off"}
					if c.strict {
						args = append(args, "--strict")
					}
					out, errOut, code := le.lh(args...)
					if code != 1 || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "tester.dev is unchanged") {
						t.Fatalf("exit %d, want 1 and %q:\n%s%s", code, c.want, out, errOut)
					}
					if c.fail == "exception" && !strings.Contains(out, "models.py\", line 20, in second") {
						t.Errorf("the traceback does not point at the user's line:\n%s", out)
					}
					if after := le.state("tester.dev"); after != before {
						t.Errorf("tester.dev changed:\n%s\nvs\n%s", before, after)
					}
					le.checkFilesUnchanged(files)
					le.checkNoLeftovers(socket, 5*time.Second)
					le.checkStateDirGone()
					rec := le.lastRun()
					if rec.Status != runrec.StatusFailed || rec.FailedModel == "" || !rec.BranchKept {
						t.Errorf("record: status %s failed %q kept %v", rec.Status, rec.FailedModel, rec.BranchKept)
					}
					if c.fail == "exception" {
						// The traceback stays with the record: in runs get
						// and among the logs, not only on the terminal.
						where := "models.py\", line 20, in second"
						if get := le.mustLH("runs", "get", rec.ID); !strings.Contains(get, "second raised:") || !strings.Contains(get, where) {
							t.Errorf("runs get lacks the traceback:\n%s", get)
						}
						logs := le.mustLH("runs", "logs", rec.ID, "-m", "second")
						if !strings.Contains(logs, "[second!] Traceback (most recent call last):") || !strings.Contains(logs, where) ||
							!strings.Contains(logs, "[second!] ZeroDivisionError: division by zero") {
							t.Errorf("runs logs lacks the traceback:\n%s", logs)
						}
					}
					// What the run wrote before failing is on its run branch.
					if _, _, code := le.lh("query", "SELECT count(*) FROM sales.first", "-r", rec.RunBranch); code != 0 {
						t.Errorf("the failed run's branch %s lacks sales.first", rec.RunBranch)
					}
				})
			}
			for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
				t.Run(sig.String(), func(t *testing.T) {
					defer le.use(t)()
					before, files := le.state("tester.dev"), le.warehouseFiles()
					cmd, stderr, lines := le.start("run", "-p", project, "--param", "fail=hang", "--preview", "off")
					defer func() {
						if t.Failed() {
							t.Logf("the run's stderr (and its reaper's):\n%s", stderr.String())
						}
					}()
					lines.waitFor(t, "third hangs", 2*time.Minute, stderr)
					// The run holds the catalog file only during its
					// transactions: other commands read and write meanwhile.
					if out, errOut, code := le.lh("query", "SELECT count(*) AS n FROM sales.transactions", "-r", "tester.dev"); code != 0 {
						t.Errorf("a query while a run is in progress: exit %d\n%s%s", code, out, errOut)
					}
					if out, errOut, code := le.lh("branch", "create", "tester.side-"+sig.String(), "--from-ref", "main"); code != 0 {
						t.Errorf("a branch created while a run is in progress: exit %d\n%s%s", code, out, errOut)
					}
					cmd.Process.Signal(sig)
					done := make(chan struct{})
					go func() {
						for range lines.lines {
						}
						close(done)
					}()
					select {
					case <-done:
					case <-time.After(30 * time.Second):
						cmd.Process.Kill()
						t.Fatalf("the run did not stop within 30 s of %s", sig)
					}
					for cmd.ProcessState == nil {
						time.Sleep(10 * time.Millisecond)
					}
					if code := cmd.ProcessState.ExitCode(); sig == syscall.SIGINT && (code != 1 || !strings.Contains(stderr.String(), "interrupted")) {
						t.Errorf("exit %d after SIGINT, stderr: %s", code, stderr.String())
					}
					le.checkNoLeftovers(socket, 15*time.Second)
					if after := le.state("tester.dev"); after != before {
						t.Errorf("tester.dev changed after %s", sig)
					}
					le.checkFilesUnchanged(files)
					rec := le.lastRun()
					want := runrec.StatusCancelled
					if sig == syscall.SIGKILL {
						want = runrec.StatusKilled
					}
					if rec.Live() != want {
						t.Errorf("run status %s, want %s", rec.Live(), want)
					}
					ls := le.mustLH("runs", "ls")
					if !strings.Contains(ls, string(want)) {
						t.Errorf("runs ls does not say %s:\n%s", want, ls)
					}
					// A killed run is listed with the time it ran, and
					// leaves no half-written record behind.
					if sig == syscall.SIGKILL && (rec.Duration <= 0 || rec.Ended.IsZero()) {
						t.Errorf("killed run: duration %.2f s, ended %v", rec.Duration, rec.Ended)
					}
					tmps, _ := filepath.Glob(filepath.Join(le.dataDir, "runs", "*", ".record.json.tmp"))
					news, _ := filepath.Glob(filepath.Join(le.dataDir, "runs", ".new-*"))
					if len(tmps)+len(news) > 0 {
						t.Errorf("left after runs ls: %v %v", tmps, news)
					}
				})
			}
		})
	}
}

// TestRunsCommands covers the record commands' bad input.
func TestRunsCommands(t *testing.T) {
	le := &lakehouseEnv{t: t, dataDir: t.TempDir(), env: map[string]string{}}
	le.env[envDataDir] = le.dataDir
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"runs", "get", "zz"}, 2, "invalid run id"},
		{[]string{"runs", "get", "0123abcd"}, 3, "no run 0123abcd"},
		{[]string{"runs", "logs", "0123abcd"}, 3, "no run 0123abcd"},
		{[]string{"runs", "cancel", "../etc"}, 2, "invalid run id"},
		{[]string{"rerun", "0123abcd"}, 3, "no run 0123abcd"},
		{[]string{"run", "--keep-failed", "soon", "-p", "."}, 2, "invalid --keep-failed"},
		{[]string{"run", "--launcher", "docker", "-p", "."}, 2, "invalid --launcher"},
	} {
		_, errOut, code := le.lh(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, want %d and %q: %s", c.args, code, c.code, c.want, errOut)
		}
	}
	out := le.mustLH("runs", "ls")
	if !strings.Contains(out, "no runs yet") {
		t.Errorf("runs ls on an empty data dir: %s", out)
	}
}

// TestRerunParams: a rerun passes the original parameters again exactly
// (an int of 1000000 or 2^53+1 used to come back from the record as a
// float, "1e+06", which --param refuses for an int), and a rerun that
// cannot be planned creates no branch.
func TestRerunParams(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	project := t.TempDir()
	for name, text := range map[string]string{
		"lakehouse.yml": "project:\n  name: params\ndefaults:\n  namespace: sales\nparameters:\n" +
			"  n: {type: int, default: 0}\n  big: {type: int, default: 0}\n  s: {type: str, default: \"\"}\n",
		"m.sql": "-- lakehouse: materialization=REPLACE\nSELECT $n AS n, $big AS big, $s AS s\n",
	} {
		if err := os.WriteFile(filepath.Join(project, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	le.mustLH("run", "-p", project, "--param", "n=1000000", "--param", "big=9007199254740993", "--param", "s= a=b", "--preview", "off")
	first := le.lastRun()
	out := le.mustLH("rerun", first.ID, "-r", "tester.re")
	if !strings.Contains(out, "all 1 output(s) match run "+first.ID) {
		t.Errorf("rerun output:\n%s", out)
	}
	// -O json prints the rerun's record once, with the match results.
	var rec runrec.Record
	mustJSON(t, le.mustLH("rerun", first.ID, "-r", "tester.re2", "-O", "json"), &rec)
	if rec.RerunOf != first.ID || len(rec.Matches) != 1 || !rec.Matches["m"] {
		t.Errorf("rerun -O json: rerun_of %q, matches %v", rec.RerunOf, rec.Matches)
	}
	got := le.mustLH("query", "SELECT n, big, s FROM sales.m", "-r", "tester.re", "-O", "csv")
	if want := "n,big,s\n1000000,9007199254740993,\" a=b\"\n"; got != want {
		t.Errorf("rerun wrote %q, want %q", got, want)
	}

	// The stored code was changed after the run: the rerun is refused
	// (exit 1, the code's hash no longer matches the record) and -r's
	// branch is not created.
	code := filepath.Join(le.dataDir, "runs", first.ID, "code", "m.sql")
	os.Chmod(code, 0o644)
	if err := os.WriteFile(code, []byte("SELECT 666 AS n, 0 AS big, '' AS s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := le.lh("rerun", first.ID, "-r", "tester.refused"); code != 1 || !strings.Contains(errOut, "no longer matches its record") {
		t.Errorf("rerun of changed code: exit %d, want 1 and a refusal: %s", code, errOut)
	}
	if _, _, code := le.lh("branch", "get", "tester.refused"); code != 3 {
		t.Errorf("a refused rerun created its branch (branch get: exit %d)", code)
	}
}

// TestRunsFailedBranch: a failed run's branch is kept for inspection,
// dropped at once with --keep-failed 0, and deleted with its record by
// runs rm (nothing would prune it later).
func TestRunsFailedBranch(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	project := t.TempDir()
	for name, text := range map[string]string{
		"lakehouse.yml": "project:\n  name: failing_sql\ndefaults:\n  namespace: sales\n",
		"a.sql":         "-- lakehouse: materialization=REPLACE\nSELECT 1 AS x\n",
		"b.sql":         "-- lakehouse: materialization=REPLACE\nSELECT error('b fails') AS y FROM a\n",
	} {
		if err := os.WriteFile(filepath.Join(project, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := le.state("tester.dev")
	if _, errOut, code := le.lh("run", "-p", project, "--preview", "off"); code != 1 || !strings.Contains(errOut, "b fails") {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	rec := le.lastRun()
	if !rec.BranchKept {
		t.Fatalf("the failed run's branch %s was not kept", rec.RunBranch)
	}
	le.mustLH("branch", "get", rec.RunBranch)
	if _, errOut, code := le.lh("runs", "logs", rec.ID, "--model", "nosuch"); code != 3 || !strings.Contains(errOut, "its models: a, b") {
		t.Errorf("runs logs --model nosuch: exit %d: %s", code, errOut)
	}
	if out := le.mustLH("runs", "rm", rec.ID); !strings.Contains(out, "and its run branch "+rec.RunBranch) {
		t.Errorf("runs rm: %s", out)
	}
	if _, _, code := le.lh("branch", "get", rec.RunBranch); code != 3 {
		t.Errorf("runs rm left branch %s (branch get: exit %d)", rec.RunBranch, code)
	}

	if _, _, code := le.lh("run", "-p", project, "--preview", "off", "--keep-failed", "0"); code != 1 {
		t.Fatalf("run --keep-failed 0: exit %d", code)
	}
	rec = le.lastRun()
	if _, _, code := le.lh("branch", "get", rec.RunBranch); code != 3 || rec.BranchKept {
		t.Errorf("--keep-failed 0 kept branch %s (kept %v, branch get: exit %d)", rec.RunBranch, rec.BranchKept, code)
	}
	if after := le.state("tester.dev"); after != before {
		t.Errorf("failed runs changed tester.dev")
	}
}

var _ = sort.Strings
var _ = fmt.Sprint
