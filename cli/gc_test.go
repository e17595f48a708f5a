package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// TestGC runs `lakehouse gc` on a data dir with a file a killed import
// left, a failed run's branch past its retention and a live table: bad
// flags change nothing; a dry run lists what goes and deletes nothing; gc
// deletes the run branch, then the files only it and the killed import
// held, and the table still reads.
func TestGC(t *testing.T) {
	dataDir, src := t.TempDir(), t.TempDir()
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	lh, must := cliRunner(t, env, nil)
	csv := filepath.Join(src, "a.csv")
	if err := os.WriteFile(csv, []byte("id,v\n1,a\n2,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must("checkout", "-b", "tester.dev")
	must("namespace", "create", "sales")
	must("table", "import", "sales.t", "--from", csv)
	// A failed run wrote a table on its branch, a week and a day ago.
	must("branch", "create", "tester.run-0c0ffee0deadbeef")
	must("table", "import", "sales.out", "--from", csv, "--branch", "tester.run-0c0ffee0deadbeef")
	runs, err := runrec.Open(filepath.Join(dataDir, "runs"))
	if err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-8 * 24 * time.Hour)
	rec := &runrec.Record{ID: "0c0ffee0deadbeef", Project: "p", User: "tester", Target: "tester.dev", Status: runrec.StatusFailed,
		RunBranch: "tester.run-0c0ffee0deadbeef", BranchKept: true, Started: long, Ended: long}
	if err := runs.Create(rec); err != nil {
		t.Fatal(err)
	}
	// What a killed import left; and every file is three days old.
	wh := filepath.Join(dataDir, "warehouse")
	orphan := filepath.Join(wh, "sales", "t-killed", "data", "x.parquet")
	if err := os.MkdirAll(filepath.Dir(orphan), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-72 * time.Hour)
	var files []string
	filepath.WalkDir(wh, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
			os.Chtimes(p, old, old)
		}
		return nil
	})
	unchanged := func(what string) {
		t.Helper()
		for _, p := range files {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		must("branch", "get", "tester.run-0c0ffee0deadbeef")
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--grace", "soon"}, `invalid --grace "soon"`},
		{[]string{"--grace", "10s"}, "--grace 10s is too short"},
		{[]string{"--grace", "-1h"}, `invalid --grace "-1h"`},
		{[]string{"--failed-runs-retention", "a week"}, `invalid --failed-runs-retention "a week"`},
		{[]string{"--expire-commits", "0"}, `invalid --expire-commits "0"`},
		{[]string{"--expire-commits", "forever"}, `invalid --expire-commits "forever"`},
		{[]string{"now"}, `unexpected argument "now"`},
		{[]string{"--force"}, "unknown flag --force"},
	} {
		_, stderr, code := lh(append([]string{"gc"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("gc %v: exit %d, %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
		unchanged("gc " + strings.Join(tc.args, " "))
	}

	var dry struct {
		DryRun  bool `json:"dry_run"`
		Deleted []struct {
			Key  string `json:"key"`
			Size int64  `json:"size"`
		} `json:"deleted"`
		Expired []struct{ Run, Branch string } `json:"expired_run_branches"`
	}
	if err := json.Unmarshal([]byte(must("gc", "--dry-run", "-O", "json")), &dry); err != nil {
		t.Fatal(err)
	}
	unchanged("gc --dry-run")
	if !dry.DryRun || len(dry.Expired) != 1 || dry.Expired[0].Branch != "tester.run-0c0ffee0deadbeef" {
		t.Fatalf("dry run: %+v", dry)
	}
	var keys []string
	for _, d := range dry.Deleted {
		keys = append(keys, d.Key)
	}
	// The orphan, and the metadata, manifest list, manifest and data file
	// of sales.out, which only the run branch held.
	if len(keys) != 5 || !strings.HasPrefix(keys[0], "sales/out-") || !strings.Contains(strings.Join(keys, " "), "sales/t-killed/data/x.parquet") {
		t.Fatalf("dry run would delete %v", keys)
	}

	out := must("gc")
	if !strings.Contains(out, "deleted run branch tester.run-0c0ffee0deadbeef (failed run 0c0ffee0deadbeef)") ||
		!strings.Contains(out, "deleted        7 B  sales/t-killed/data/x.parquet") ||
		!strings.Contains(out, "deleted 5 files") {
		t.Fatalf("gc printed:\n%s", out)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatalf("the orphan is still there: %v", err)
	}
	if _, stderr, code := lh("branch", "get", "tester.run-0c0ffee0deadbeef"); code != 3 {
		t.Fatalf("the run branch is still there: %s", stderr)
	}
	if r, err := runs.Get(rec.ID); err != nil || r.BranchKept {
		t.Fatalf("the run record still keeps its branch: %+v, %v", r, err)
	}
	if got := must("table", "get", "sales.t", "-O", "json"); !strings.Contains(got, `"row_count": 2`) {
		t.Fatalf("sales.t after gc: %s", got)
	}
	if out := must("gc"); !strings.HasPrefix(out, "deleted 0 files") {
		t.Fatalf("a second gc printed:\n%s", out)
	}
}

// TestGCServed runs one gc transcript against the embedded catalog and
// against `lakehouse serve` over the same kind of data dir, and expects
// the same output: a dry run that deletes nothing, a failed run's branch
// past its retention, a killed import's file, history past
// --expire-commits leaving the log (time travel within it still reads),
// and the folders gc emptied gone. Against the server, gc then runs while
// an import is in flight there: what the import writes stays.
func TestGCServed(t *testing.T) {
	var transcripts [2]string
	for i, served := range []bool{false, true} {
		transcripts[i] = gcTranscript(t, served)
	}
	if transcripts[0] != transcripts[1] {
		t.Fatalf("embedded and served gc differ:\n--- embedded\n%s\n--- served\n%s", transcripts[0], transcripts[1])
	}
}

func gcTranscript(t *testing.T, served bool) string {
	dataDir, src := t.TempDir(), t.TempDir()
	// Commits are made 40 days ago, by the test clock; gc runs now.
	clock := &testClock{t: time.Now().Add(-40 * 24 * time.Hour)}
	norm := newNormalizer(dataDir, src)
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	if served {
		env[envAddr] = startServer(t, dataDir, clock)
	}
	var transcript strings.Builder
	lh, must := cliRunner(t, env, clock.now)
	show := func(args ...string) string {
		t.Helper()
		out := must(args...)
		fmt.Fprintf(&transcript, "$ lakehouse %s\n", norm.apply(strings.Join(args, " ")))
		for _, l := range splitLines(out) {
			transcript.WriteString(norm.apply(l) + "\n")
		}
		return out
	}
	csv := filepath.Join(src, "a.csv")
	if err := os.WriteFile(csv, []byte("id,v\n1,a\n2,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must("checkout", "-b", "tester.dev")
	must("namespace", "create", "sales")
	must("table", "import", "sales.t", "--from", csv)
	must("table", "import", "sales.t", "--from", csv, "--mode", "replace")
	must("branch", "create", "tester.run-0c0ffee0deadbeef")
	must("table", "import", "sales.out", "--from", csv, "--branch", "tester.run-0c0ffee0deadbeef")
	long := time.Now().Add(-8 * 24 * time.Hour)
	runs, err := runrec.Open(filepath.Join(dataDir, "runs"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &runrec.Record{ID: "0c0ffee0deadbeef", Project: "p", User: "tester", Target: "tester.dev", Status: runrec.StatusFailed,
		RunBranch: "tester.run-0c0ffee0deadbeef", BranchKept: true, Started: long, Ended: long}
	if err := runs.Create(rec); err != nil {
		t.Fatal(err)
	}
	// Two days ago: one more import (the retention of 30 days keeps it,
	// and the replace before it: the state in effect 30 days ago).
	clock.mu.Lock()
	clock.t = time.Now().Add(-48 * time.Hour)
	clock.mu.Unlock()
	csv2 := filepath.Join(src, "b.csv")
	if err := os.WriteFile(csv2, []byte("id,v\n3,c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must("table", "import", "sales.t", "--from", csv2, "--mode", "append")
	wh := filepath.Join(dataDir, "warehouse")
	orphan := filepath.Join(wh, "sales", "t-killed", "data", "x.parquet")
	if err := os.MkdirAll(filepath.Dir(orphan), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	ageFiles(t, wh, 72*time.Hour)
	clock.mu.Lock()
	clock.t = time.Now()
	clock.mu.Unlock()
	before := listFiles(t, wh)

	show("log", "tester.dev")
	if out := show("gc", "--dry-run", "--expire-commits", "30d"); !strings.Contains(out, "would expire 2 commits made before ") {
		t.Fatalf("served=%v: gc --dry-run printed:\n%s", served, out)
	}
	if after := listFiles(t, wh); !slices.Equal(after, before) {
		t.Fatalf("served=%v: a dry run changed the warehouse: %v -> %v", served, before, after)
	}
	out := show("gc", "--expire-commits", "30d")
	if !strings.Contains(out, "deleted run branch tester.run-0c0ffee0deadbeef (failed run 0c0ffee0deadbeef)") ||
		!strings.Contains(out, "sales/t-killed/data/x.parquet") || !strings.Contains(out, "expired 2 commits made before ") {
		t.Fatalf("served=%v: gc printed:\n%s", served, out)
	}
	// The folders gc emptied are gone; the warehouse and the folders of
	// tables in use stay.
	for _, d := range []string{filepath.Join(wh, "sales", "t-killed"), filepath.Join(wh, "sales", "t-killed", "data")} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("served=%v: %s is still there (%v)", served, d, err)
		}
	}
	if ds, _ := filepath.Glob(filepath.Join(wh, "sales", "out-*")); len(ds) != 0 {
		t.Errorf("served=%v: the folders of the expired run's table are still there: %v", served, ds)
	}
	if ds, _ := filepath.Glob(filepath.Join(wh, "sales", "t-*", "metadata")); len(ds) != 1 {
		t.Errorf("served=%v: the table's folder: %v", served, ds)
	}
	// The log keeps the commit of two days ago and the one in effect 30
	// days ago; time travel within the retention reads.
	if log := show("log", "tester.dev"); strings.Count(log, "import 1 file(s) into sales.t") != 2 || strings.Count(log, "\n") != 3 {
		t.Fatalf("served=%v: the log after gc --expire-commits:\n%s", served, log)
	}
	if out := must("table", "get", "sales.t", "-O", "json"); !strings.Contains(out, `"row_count": 3`) {
		t.Fatalf("served=%v: sales.t after gc: %s", served, out)
	}
	at := "tester.dev@" + time.Now().Add(-29*24*time.Hour).UTC().Format(time.RFC3339)
	if out := must("table", "get", "sales.t", "--ref", at, "-O", "json"); !strings.Contains(out, `"row_count": 2`) {
		t.Fatalf("served=%v: sales.t at %s after gc: %s", served, at, out)
	}
	if _, stderr, code := lh("table", "get", "sales.t", "--ref", "tester.dev@"+time.Now().Add(-45*24*time.Hour).UTC().Format(time.RFC3339)); code != 3 || !strings.Contains(stderr, "expired") {
		t.Fatalf("served=%v: time travel past the retention: exit %d: %s", served, code, stderr)
	}
	show("gc", "--expire-commits", "30d")
	if served {
		gcInFlightImport(t, lh, env, clock, src)
	}
	return transcript.String()
}

// gcInFlightImport runs gc against the server, by a clock two days ahead,
// while an import is in flight on it: whatever the import writes is newer
// than its writer record, and stays; the import commits, and its table
// reads back every row.
func gcInFlightImport(t *testing.T, lh func(...string) (string, string, int), env map[string]string, clock *testClock, src string) {
	var b strings.Builder
	b.WriteString("id,v\n")
	const rows = 400000
	for i := range rows {
		fmt.Fprintf(&b, "%d,value-%d\n", i, i)
	}
	big := filepath.Join(src, "big.csv")
	if err := os.WriteFile(big, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	clock.mu.Lock()
	clock.t = time.Now().Add(48 * time.Hour)
	clock.mu.Unlock()
	done := make(chan string, 1)
	// The import runs as a process of its own: two commands in this
	// process at once would share urfave/cli's global help flag.
	cmd := exec.Command(cliBinary(), "table", "import", "sales.big", "--from", big)
	cmd.Env = append(os.Environ(), envTestAsCLI+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var importErr bytes.Buffer
	cmd.Stderr = &importErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := cmd.Wait(); err != nil {
			done <- fmt.Sprintf("import: %v: %s", err, importErr.String())
		}
		close(done)
	}()
	held := 0
	for finished := false; !finished; {
		select {
		case msg, ok := <-done:
			if ok {
				t.Fatal(msg)
			}
			finished = true
		default:
		}
		out, stderr, code := lh("gc", "--grace", "1h", "-O", "json")
		if code != 0 {
			t.Fatalf("gc while importing: exit %d: %s", code, stderr)
		}
		var res struct {
			Writers int `json:"in_flight_writers"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		held += res.Writers
	}
	if held == 0 {
		t.Fatal("no gc ran while the import was in flight")
	}
	out, stderr, code := lh("table", "get", "sales.big", "-O", "json")
	if code != 0 || !strings.Contains(out, fmt.Sprintf(`"row_count": %d`, rows)) {
		t.Fatalf("sales.big after gc during its import: exit %d: %s%s", code, out, stderr)
	}
	if out, stderr, code := lh("query", "SELECT count(*) AS n FROM sales.big", "--ref", "tester.dev", "-O", "csv"); code != 0 || !strings.Contains(out, fmt.Sprint(rows)) {
		t.Fatalf("reading sales.big: exit %d: %s%s", code, out, stderr)
	}
}

// ageFiles dates every file under dir d ago.
func ageFiles(t *testing.T, dir string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// listFiles lists the files under dir.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cliRunner returns functions that run a command in this process with
// env (and now as the clock, if not nil): lh returns its output and exit
// code, must its output after checking it succeeded.
func cliRunner(t *testing.T, env map[string]string, now func() time.Time) (lh func(...string) (string, string, int), must func(...string) string) {
	lh = func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }, Now: now}
		code := run(context.Background(), append([]string{"lakehouse"}, args...), e)
		return stdout.String(), stderr.String(), code
	}
	must = func(args ...string) string {
		t.Helper()
		out, stderr, code := lh(args...)
		if code != 0 {
			t.Fatalf("%v (%s): exit %d: %s", args, env[envAddr], code, stderr)
		}
		return out
	}
	return lh, must
}
