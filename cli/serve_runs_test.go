package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

var (
	runsFlightAddrRE = regexp.MustCompile(`flight on grpc://([0-9.:]+)`)
	runsHTTPAddrRE   = regexp.MustCompile(`http on http://([0-9.:]+)`)
)

// envTestHTTP holds, in a test's environment, the HTTP address of the
// server it started.
const envTestHTTP = "LAKEHOUSE_TEST_HTTP_ADDR"

// serveRunsInProcess starts `lakehouse serve` over le's data dir in this
// process, on loopback ports chosen by the system, and returns a copy of
// le whose commands talk to it, and a function that stops it (as SIGTERM
// would) and returns what it printed.
func serveRunsInProcess(t *testing.T, le *lakehouseEnv) (*lakehouseEnv, func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		e := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return le.env[k] }}
		done <- run(ctx, []string{"lakehouse", "serve", "--flight-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--shutdown-timeout", "4s"}, e)
	}()
	addr := ""
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		if m := runsFlightAddrRE.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited %d:\n%s%s", code, out.String(), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve printed no address:\n%s%s", out.String(), errOut.String())
		}
	}
	remote := &lakehouseEnv{t: le.t, dataDir: le.dataDir, shmDir: le.shmDir, env: map[string]string{}}
	for k, v := range le.env {
		remote.env[k] = v
	}
	remote.env[envAddr] = addr
	if m := runsHTTPAddrRE.FindStringSubmatch(out.String()); m != nil {
		remote.env[envTestHTTP] = m[1]
	}
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			cancel()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Errorf("serve did not stop")
			}
		}
		return out.String() + errOut.String()
	}
	t.Cleanup(func() { stop() })
	return remote, stop
}

// writeRunProject writes files into a new folder.
func writeRunProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var (
	runHexRE     = regexp.MustCompile(`\b[0-9a-f]{12,64}\b`)
	runSecondsRE = regexp.MustCompile(`\d+\.\d+ ?s\b`)
	runClockRE   = regexp.MustCompile(`(\d{4}-\d\d-\d\d[ T])?\d\d:\d\d:\d\d(\.\d+)?`)
	runSpacesRE  = regexp.MustCompile(`  +`)
)

// normalizeRun blanks what differs between two runs of the same project:
// ids, commits and times.
func normalizeRun(s string) string {
	s = runHexRE.ReplaceAllString(s, "<id>")
	s = runSecondsRE.ReplaceAllString(s, "<t>s")
	s = runClockRE.ReplaceAllString(s, "<clock>")
	return runSpacesRE.ReplaceAllString(s, "  ")
}

// servedSQLProject materializes two tables from sales.transactions.
var servedSQLProject = map[string]string{
	"lakehouse.yml": "project:\n  name: served\ndefaults:\n  namespace: sales\nparameters:\n  min_usd: {type: float, default: 0}\n",
	"big.sql":       "-- lakehouse: materialization=REPLACE\nSELECT id, usd, country FROM transactions WHERE usd >= $min_usd\n",
	"by_country.sql": "-- lakehouse: materialization=REPLACE\n" +
		"SELECT country, count(*) AS n, sum(usd) AS usd FROM big GROUP BY country ORDER BY country\n",
	"sub/notes.txt": "a file in a folder\n",
}

// sleeperProject is a Python model that prints a line every 0.2 s for
// about secs seconds, and a SQL model after it.
func sleeperProject(secs int) map[string]string {
	return map[string]string{
		"lakehouse.yml": "project:\n  name: sleeper\ndefaults:\n  python: \"3.11\"\n  namespace: sales\n",
		"models.py": `import lakehouse


@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def slow(data=lakehouse.Model("transactions", columns=["id", "usd"])):
    import time

    for i in range(` + strconv.Itoa(secs*5) + `):
        print("tick", i, flush=True)
        time.sleep(0.2)
    return data
`,
		"after.sql": "-- lakehouse: materialization=REPLACE\nSELECT count(*) AS n FROM slow\n",
	}
}

// TestServeRunsSameOutput runs the same projects embedded and against a
// server over the same kind of data dir: the same lines, the same -O json
// record, the same exit codes and errors.
func TestServeRunsSameOutput(t *testing.T) {
	embedded := newLakehouseEnv(t, launchers.Process, "")
	served := newLakehouseEnv(t, launchers.Process, "")
	remote, _ := serveRunsInProcess(t, served)
	project := writeRunProject(t, servedSQLProject)
	failing := writeRunProject(t, map[string]string{
		"lakehouse.yml": "project:\n  name: failing_sql\ndefaults:\n  namespace: sales\n",
		"a.sql":         "-- lakehouse: materialization=REPLACE\nSELECT 1 AS x\n",
		"b.sql":         "-- lakehouse: materialization=REPLACE\nSELECT error('b fails') AS y FROM a\n",
	})
	cycle := testdataDir(t, "pipelines", "invalid", "cycle")

	for _, c := range []struct {
		name string
		args []string
	}{
		{"run", []string{"run", "-p", project, "--param", "min_usd=10"}},
		{"run again (reused)", []string{"run", "-p", project, "--param", "min_usd=10"}},
		{"dry run", []string{"run", "--dry-run", "-p", project}},
		{"dry run json", []string{"run", "--dry-run", "-p", project, "-O", "json"}},
		{"failing run", []string{"run", "-p", failing, "--preview", "off"}},
		{"invalid project", []string{"run", "--dry-run", "-p", cycle}},
		{"relative folder", []string{"run", "--dry-run", "-p", "."}},
		{"no folder", []string{"run", "-p", "/nonexistent/project"}},
		{"not a project", []string{"run", "-p", testdataDir(t, "pipelines")}},
		{"run of a tag", []string{"run", "-p", project, "-r", "v1"}},
		{"runs ls", []string{"runs", "ls"}},
		{"no such run", []string{"runs", "get", "0123abcd"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "run of a tag" {
				embedded.mustLH("tag", "create", "v1")
				remote.mustLH("tag", "create", "v1")
			}
			if c.name == "relative folder" {
				// A folder named as the client names it: planning errors
				// name its files the same way on both sides.
				wd, _ := os.Getwd()
				os.Chdir(cycle)
				defer os.Chdir(wd)
			}
			eOut, eErr, eCode := embedded.lh(c.args...)
			rOut, rErr, rCode := remote.lh(c.args...)
			if eCode != rCode {
				t.Errorf("exit %d embedded, %d served\nembedded: %s%s\nserved: %s%s", eCode, rCode, eOut, eErr, rOut, rErr)
			}
			if normalizeRun(eOut) != normalizeRun(rOut) || normalizeRun(eErr) != normalizeRun(rErr) {
				t.Errorf("output differs\n--- embedded\n%s%s--- served\n%s%s", eOut, eErr, rOut, rErr)
			}
		})
	}

	// -O json prints the same record, the project folder named as on the
	// client, the same files shipped.
	_, _, code := embedded.lh("run", "-p", project, "-r", "tester.dev", "-O", "json", "--no-cache")
	eRec := embedded.lastRun()
	var rRec runrec.Record
	out, errOut, rcode := remote.lh("run", "-p", project, "-r", "tester.dev", "-O", "json", "--no-cache")
	if code != 0 || rcode != 0 {
		t.Fatalf("run -O json: exit %d embedded, %d served: %s", code, rcode, errOut)
	}
	mustJSON(t, out, &rRec)
	if rRec.ProjectDir != project || eRec.ProjectDir != project || rRec.CodeHash != eRec.CodeHash ||
		strings.Join(rRec.Files, ",") != strings.Join(eRec.Files, ",") || rRec.Status != runrec.StatusSucceeded {
		t.Errorf("served record: dir %s, code %s %v, status %s; embedded: dir %s, code %s %v",
			rRec.ProjectDir, rRec.CodeHash, rRec.Files, rRec.Status, eRec.ProjectDir, eRec.CodeHash, eRec.Files)
	}
	if rRec.Properties[propServed] == "" || rRec.User != "tester" {
		t.Errorf("served record: properties %v, user %q", rRec.Properties, rRec.User)
	}

	// runs get / logs / rm read the server's records.
	for _, args := range [][]string{{"runs", "get", rRec.ID}, {"runs", "logs", rRec.ID}, {"runs", "get", rRec.ID, "-O", "json"}} {
		if _, errOut, code := remote.lh(args...); code != 0 {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
	}
	if out := remote.mustLH("runs", "rm", rRec.ID); !strings.Contains(out, "deleted run "+rRec.ID) {
		t.Errorf("runs rm: %s", out)
	}
	if _, _, code := remote.lh("runs", "get", rRec.ID); code != 3 {
		t.Errorf("runs get of a deleted run: exit %d, want 3", code)
	}

	// A rerun through the server matches the original.
	remote.mustLH("run", "-p", project, "--param", "min_usd=3", "--preview", "off")
	first := remote.servedLastRun()
	if out := remote.mustLH("rerun", first.ID, "-r", "tester.re"); !strings.Contains(out, "all 2 output(s) match run "+first.ID) ||
		!strings.Contains(out, "created branch tester.re at") {
		t.Errorf("rerun through the server:\n%s", out)
	}

	// /metrics counts the runs.
	resp, err := http.Get("http://" + remote.env[envTestHTTP] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`lakehouse_runs{status="succeeded"} `, `lakehouse_runs{status="planned"} `, "lakehouse_run_duration_seconds_count "} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, metrics)
		}
	}

	// Without a server, --detach is refused.
	if _, errOut, code := embedded.lh("run", "-p", project, "--detach"); code != 4 || !strings.Contains(errOut, "needs a lakehouse server") {
		t.Errorf("embedded run --detach: exit %d: %s", code, errOut)
	}
}

// servedLastRun is the newest run the server lists.
func (le *lakehouseEnv) servedLastRun() *runrec.Record {
	le.t.Helper()
	var recs []struct {
		ID string `json:"id"`
	}
	mustJSON(le.t, le.mustLH("runs", "ls", "-O", "json"), &recs)
	if len(recs) == 0 {
		le.t.Fatal("no runs listed")
	}
	var rec runrec.Record
	mustJSON(le.t, le.mustLH("runs", "get", recs[0].ID, "-O", "json"), &rec)
	return &rec
}

// waitState polls a run through the server until check accepts it.
func (le *lakehouseEnv) servedWaitRun(id string, what string, check func(*runrec.Record) bool) *runrec.Record {
	le.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var rec runrec.Record
		out, errOut, code := le.lh("runs", "get", id, "-O", "json")
		if code == 0 {
			mustJSON(le.t, out, &rec)
			if check(&rec) {
				return &rec
			}
		}
		if time.Now().After(deadline) {
			le.t.Fatalf("run %s: no %s after 2 minutes: %s%s", id, what, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func modelRunning(name string) func(*runrec.Record) bool {
	return func(r *runrec.Record) bool {
		m := r.Model(name)
		return m != nil && m.State == runrec.StateRunning
	}
}

// TestServeRunsDetachFollowCancel: run --detach returns the id at once,
// runs logs --follow prints the lines as the run prints them and returns
// when it ends; runs cancel stops a run and leaves its target untouched.
func TestServeRunsDetachFollowCancel(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	// Warm the environment embedded, so the detached runs start fast.
	short := writeRunProject(t, sleeperProject(1))
	le.mustLH("run", "-p", short, "--preview", "off")
	remote, _ := serveRunsInProcess(t, le)

	project := writeRunProject(t, sleeperProject(2))
	out, errOut, code := remote.lh("run", "-p", project, "--detach", "--preview", "off")
	id := strings.TrimSpace(out)
	if code != 0 || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) || !strings.Contains(errOut, "runs logs "+id+" --follow") {
		t.Fatalf("run --detach: exit %d, stdout %q: %s", code, out, errOut)
	}
	logs := remote.mustLH("runs", "logs", id, "--follow")
	for _, want := range []string{"[slow] tick 0", "[slow] tick 9"} {
		if !strings.Contains(logs, want) {
			t.Errorf("runs logs --follow lacks %q:\n%s", want, logs)
		}
	}
	if rec := remote.servedWaitRun(id, "end", func(r *runrec.Record) bool { return r.Status != runrec.StatusRunning }); rec.Status != runrec.StatusSucceeded {
		t.Errorf("detached run ended %s: %s", rec.Status, rec.Error)
	}

	// Cancel: the target stays as it was.
	before := remote.state("tester.dev")
	files := le.warehouseFiles()
	long := writeRunProject(t, sleeperProject(60))
	out, errOut, code = remote.lh("run", "-p", long, "--detach", "--preview", "off", "--priority", "3")
	if code != 0 {
		t.Fatalf("run --detach: exit %d: %s", code, errOut)
	}
	id = strings.TrimSpace(out)
	remote.servedWaitRun(id, "running model", modelRunning("slow"))
	// Embedded, the command cannot signal the server's run: it says so.
	if _, errOut, code := le.lh("runs", "cancel", id); code != 4 || !strings.Contains(errOut, "cancel it through the server") {
		t.Errorf("embedded runs cancel of a served run: exit %d: %s", code, errOut)
	}
	if out := remote.mustLH("runs", "cancel", id); !strings.Contains(out, "asked run "+id+" to stop; its target tester.dev stays unchanged") {
		t.Errorf("runs cancel: %s", out)
	}
	rec := remote.servedWaitRun(id, "end", func(r *runrec.Record) bool { return r.Status != runrec.StatusRunning })
	if rec.Status != runrec.StatusCancelled {
		t.Errorf("cancelled run is %s", rec.Status)
	}
	if after := remote.state("tester.dev"); after != before {
		t.Errorf("a cancelled run changed its target:\n--- before\n%s\n--- after\n%s", before, after)
	}
	le.checkFilesUnchanged(files)
	if _, errOut, code := remote.lh("runs", "cancel", id); code != 4 || !strings.Contains(errOut, "is not running") {
		t.Errorf("cancel of an ended run: exit %d: %s", code, errOut)
	}
}

// TestServeRunsBadProject: projects that are not a clean tar of files are
// refused with a clear error, and nothing changes.
func TestServeRunsBadProject(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	remote, _ := serveRunsInProcess(t, le)
	before := remote.state("tester.dev") + remote.mustLH("runs", "ls", "-O", "json")
	c, err := flight.Dial(remote.env[envAddr], flight.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tarOf := func(entries ...*tar.Header) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for _, h := range entries {
			tw.WriteHeader(h)
			if h.Typeflag == tar.TypeReg {
				tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			}
		}
		tw.Close()
		zw.Close()
		return buf.Bytes()
	}
	yml := &tar.Header{Typeflag: tar.TypeReg, Name: "lakehouse.yml", Size: 1, Mode: 0o644}
	for _, c2 := range []struct {
		name    string
		project []byte
		want    string
	}{
		{"traversal", tarOf(yml, &tar.Header{Typeflag: tar.TypeReg, Name: "../evil.py", Size: 3, Mode: 0o644}), "leaves the project folder"},
		{"deep traversal", tarOf(&tar.Header{Typeflag: tar.TypeReg, Name: "a/../../evil.py", Size: 3, Mode: 0o644}), "leaves the project folder"},
		{"absolute", tarOf(&tar.Header{Typeflag: tar.TypeReg, Name: "/etc/evil.py", Size: 3, Mode: 0o644}), "not a relative path"},
		{"symlink", tarOf(yml, &tar.Header{Typeflag: tar.TypeSymlink, Name: "link.py", Linkname: "/etc/passwd"}), "link or device"},
		{"device", tarOf(&tar.Header{Typeflag: tar.TypeChar, Name: "dev", Devmajor: 1, Devminor: 3}), "link or device"},
		{"not gzip", []byte("plain text"), "not gzip data"},
		{"empty", nil, "it is empty"},
		{"too big", make([]byte, flight.MaxProjectBytes+1), "the limit is 64.0 MiB"},
		{"too big unpacked", tarHeaderOnly(&tar.Header{Typeflag: tar.TypeReg, Name: "big.txt", Size: flight.MaxProjectUnpacked + 1, Mode: 0o644}), "once unpacked"},
	} {
		t.Run(c2.name, func(t *testing.T) {
			err := c.Run(context.Background(), flight.RunBody{Project: c2.project, Ref: "tester.dev", Dir: "p"},
				func(*flight.RunEvent) error { return nil })
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), c2.want) {
				t.Errorf("got %v, want invalid argument with %q", err, c2.want)
			}
		})
	}
	if after := remote.state("tester.dev") + remote.mustLH("runs", "ls", "-O", "json"); after != before {
		t.Errorf("refused projects changed the state:\n--- before\n%s\n--- after\n%s", before, after)
	}
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), "lakehouse-project-*"))
	for _, d := range left {
		if st, err := os.Stat(d); err == nil && time.Since(st.ModTime()) < time.Minute {
			t.Errorf("a refused project left %s", d)
		}
	}
}

// tarHeaderOnly is a gzip'd tar of one entry's header, its contents cut
// off: the server refuses an entry bigger than its limit by the header,
// before it reads a byte of it (and compressing 256 MiB of contents took
// half a minute under -race).
func tarHeaderOnly(h *tar.Header) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(h); err != nil {
		panic(err)
	}
	tw.Flush() // reports the missing contents; the header is written
	zw.Close()
	return buf.Bytes()
}

// TestServeRunsSIGTERM stops a server (a process) with SIGTERM while a
// run goes on: the run is recorded as interrupted, its target untouched,
// and a server started again lists it so. A run left unfinished by a
// server killed with SIGKILL is listed as interrupted too.
func TestServeRunsSIGTERM(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	short := writeRunProject(t, sleeperProject(1))
	le.mustLH("run", "-p", short, "--preview", "off") // warms the environment
	long := writeRunProject(t, sleeperProject(60))
	before := le.state("tester.dev")
	files := le.warehouseFiles()

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			began := time.Now()
			cmd, stderr, lw := le.start("serve", "--flight-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--shutdown-timeout", "2s")
			addr := ""
			deadline := time.After(30 * time.Second)
			for addr == "" {
				select {
				case l, ok := <-lw.lines:
					if !ok {
						t.Fatalf("serve ended: %s", stderr)
					}
					if m := runsFlightAddrRE.FindStringSubmatch(l); m != nil {
						addr = m[1]
					}
				case <-deadline:
					cmd.Process.Kill()
					t.Fatalf("serve printed no address: %s", stderr)
				}
			}
			remote := &lakehouseEnv{t: t, dataDir: le.dataDir, env: map[string]string{}}
			for k, v := range le.env {
				remote.env[k] = v
			}
			remote.env[envAddr] = addr
			out, errOut, code := remote.lh("run", "-p", long, "--detach", "--preview", "off")
			if code != 0 {
				cmd.Process.Kill()
				t.Fatalf("run --detach: exit %d: %s", code, errOut)
			}
			id := strings.TrimSpace(out)
			remote.servedWaitRun(id, "running model", modelRunning("slow"))
			cmd.Process.Signal(sig)
			for stop := time.Now().Add(time.Minute); !serverGone(cmd.Process.Pid); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(stop) {
					cmd.Process.Kill()
					t.Fatalf("serve did not stop after %s", sig)
				}
			}
			if sig == syscall.SIGTERM && !strings.Contains(stderr.String(), "stopped") {
				t.Errorf("serve's stderr after SIGTERM: %s", stderr)
			}
			// The kill leaves the function's process to its lifeline;
			// give it a moment to go.
			again, _ := serveRunsInProcess(t, le)
			rec := again.servedWaitRun(id, "end", func(r *runrec.Record) bool { return r.Status != runrec.StatusRunning })
			if rec.Status != runrec.StatusInterrupted {
				t.Errorf("after %s the run is %s (%s), want interrupted", sig, rec.Status, rec.Error)
			}
			// SIGTERM: the server recorded the end itself; SIGKILL: the
			// next server found the run unfinished.
			wantErr := map[syscall.Signal]string{syscall.SIGTERM: "interrupted: the server stopped",
				syscall.SIGKILL: "stopped without finishing the run"}[sig]
			if !strings.Contains(rec.Error, wantErr) {
				t.Errorf("after %s the run's error is %q, want %q", sig, rec.Error, wantErr)
			}
			t.Logf("%s: %s; server said:\n%s", sig, rec.Error, stderr)
			ls := again.mustLH("runs", "ls")
			if !strings.Contains(ls, id) || !regexp.MustCompile(id+`\s+interrupted`).MatchString(ls) {
				t.Errorf("runs ls after %s:\n%s", sig, ls)
			}
			if after := again.state("tester.dev"); after != before {
				t.Errorf("an interrupted run changed its target")
			}
			// The project the client sent went when the run started.
			left, _ := filepath.Glob(filepath.Join(os.TempDir(), "lakehouse-project-*"))
			for _, d := range left {
				if st, err := os.Stat(d); err == nil && st.ModTime().After(began) {
					t.Errorf("the run's project folder %s is left", d)
				}
			}
			defer le.use(t)()
			le.checkFilesUnchanged(files)
			// The run's folder in shared memory is gone: removed by the
			// run (SIGTERM) or by its reaper (SIGKILL).
			le.checkNoLeftovers("", 30*time.Second)
		})
	}
}

// serverGone reports whether pid has exited (a zombie not yet waited for
// counts as gone).
func serverGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 < len(b) && b[i+2] == 'Z'
}

// TestServeRunsYieldToQueries: while a query streams, a run's models wait;
// when it ends, the run goes on.
func TestServeRunsYieldToQueries(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	remote, _ := serveRunsInProcess(t, le)
	project := writeRunProject(t, servedSQLProject)
	c, err := flight.Dial(remote.env[envAddr], flight.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A result far larger than the stream's window: the server holds the
	// query open until the client reads it or lets it go.
	r, err := c.Query(context.Background(), flight.QueryCommand{SQL: "SELECT a.id, b.id, c.id FROM sales.transactions a, sales.transactions b, sales.transactions c", Ref: "tester.dev"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Next() {
		t.Fatalf("the query sent nothing: %v", r.Err())
	}
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := remote.lh("run", "-p", project, "--preview", "off")
		done <- result{out, errOut, code}
	}()
	select {
	case res := <-done:
		t.Fatalf("the run did not wait for the query: exit %d\n%s%s", res.code, res.out, res.errOut)
	case <-time.After(2 * time.Second):
	}
	r.Release()
	select {
	case res := <-done:
		if res.code != 0 || !strings.Contains(res.out, "succeeded") {
			t.Errorf("run after the query: exit %d\n%s%s", res.code, res.out, res.errOut)
		}
	case <-time.After(time.Minute):
		t.Fatal("the run did not go on once the query ended")
	}
}

// TestServeRunsStopWhileStreaming: a server stopping under a run whose
// client watches it interrupts the run within the shutdown timeout, and
// the client hears it: the run's end, exit 1, target untouched.
func TestServeRunsStopWhileStreaming(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	short := writeRunProject(t, sleeperProject(1))
	le.mustLH("run", "-p", short, "--preview", "off") // warms the environment
	warm := le.lastRun().ID
	before := le.state("tester.dev")
	remote, stop := serveRunsInProcess(t, le)
	long := writeRunProject(t, sleeperProject(60))
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := remote.lh("run", "-p", long, "--preview", "off")
		done <- result{out, errOut, code}
	}()
	id := warm
	for deadline := time.Now().Add(time.Minute); id == warm; id = remote.servedLastRun().ID {
		if time.Now().After(deadline) {
			t.Fatal("the run did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	rec := remote.servedWaitRun(id, "running model", modelRunning("slow"))
	start := time.Now()
	said := stop()
	res := <-done
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the server took %s to stop", took)
	}
	if res.code != 1 || !strings.Contains(res.out, "run "+rec.ID+" interrupted after") ||
		!strings.Contains(res.errOut, "run "+rec.ID+" was interrupted") {
		t.Errorf("client of the stopped server: exit %d\n%s%s\nserver:\n%s", res.code, res.out, res.errOut, said)
	}
	again, _ := serveRunsInProcess(t, le)
	if got := again.servedLastRun(); got.ID != rec.ID || got.Status != runrec.StatusInterrupted {
		t.Errorf("after the stop: run %s is %s", got.ID, got.Status)
	}
	if after := again.state("tester.dev"); after != before {
		t.Errorf("an interrupted run changed its target")
	}
}

// TestServeRunsConcurrent: runs of several clients at once, into their
// own branches, all merge.
func TestServeRunsConcurrent(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	for _, b := range []string{"tester.a", "tester.b", "tester.c"} {
		le.mustLH("branch", "create", b, "--from-ref", "tester.dev")
	}
	remote, _ := serveRunsInProcess(t, le)
	project := writeRunProject(t, servedSQLProject)
	// Clients of their own (the CLI's flags are not for running in-process
	// at once).
	tarred, err := packProject(project)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan string, 3)
	for _, b := range []string{"tester.a", "tester.b", "tester.c"} {
		go func() {
			c, err := flight.Dial(remote.env[envAddr], flight.DialOptions{Author: "tester"})
			if err != nil {
				errs <- err.Error()
				return
			}
			defer c.Close()
			var end *flight.RunEvent
			err = c.Run(context.Background(), flight.RunBody{Project: tarred, Dir: project, Ref: b, NoCache: true},
				func(ev *flight.RunEvent) error {
					if ev.Type == flight.EventFinished {
						end = ev
					}
					return nil
				})
			switch {
			case err != nil:
				errs <- b + ": " + err.Error()
			case end == nil:
				errs <- b + ": the run's events ended without its end"
			case end.Error != nil || end.Record == nil || end.Record.Status != runrec.StatusSucceeded:
				rec, _ := json.MarshalIndent(end.Record, "", "  ")
				errs <- fmt.Sprintf("%s: run %s failed: %+v\nrecord: %s", b, end.RunID, end.Error, rec)
			default:
				errs <- ""
			}
		}()
	}
	for range 3 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	for _, b := range []string{"tester.a", "tester.b", "tester.c"} {
		if out, errOut, _ := remote.lh("query", "SELECT count(*) AS n FROM sales.by_country", "-r", b, "-O", "csv"); out != "n\n8\n" {
			t.Errorf("%s: %q %s", b, out, errOut)
		}
	}
}

// TestServeRunsCtrlC: Ctrl-C on `run` against a server cancels the run in
// the server and shows its end as embedded: interrupted, exit 1, target
// untouched.
func TestServeRunsCtrlC(t *testing.T) {
	le := newLakehouseEnv(t, launchers.Process, "")
	short := writeRunProject(t, sleeperProject(1))
	le.mustLH("run", "-p", short, "--preview", "off") // warms the environment
	warm := le.lastRun().ID
	before := le.state("tester.dev")
	remote, _ := serveRunsInProcess(t, le)
	long := writeRunProject(t, sleeperProject(60))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		e := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return remote.env[k] }}
		done <- run(ctx, []string{"lakehouse", "run", "-p", long, "--preview", "off"}, e)
	}()
	id := warm
	for deadline := time.Now().Add(time.Minute); id == warm; id = remote.servedLastRun().ID {
		if time.Now().After(deadline) {
			t.Fatal("the run did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	remote.servedWaitRun(id, "running model", modelRunning("slow"))
	cancel()
	var code int
	select {
	case code = <-done:
	case <-time.After(time.Minute):
		t.Fatal("run did not end after Ctrl-C")
	}
	if code != 1 || !strings.Contains(out.String(), "run "+id+" interrupted after") || !strings.Contains(errOut.String(), "run "+id+" was interrupted") {
		t.Errorf("Ctrl-C: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if rec := remote.servedLastRun(); rec.ID != id || rec.Status != runrec.StatusCancelled {
		t.Errorf("after Ctrl-C run %s is %s", rec.ID, rec.Status)
	}
	if after := remote.state("tester.dev"); after != before {
		t.Errorf("a cancelled run changed its target")
	}
}
