package pipeline_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

const testConfig = `project:
  name: t
defaults:
  python: "3.11"
  namespace: bench
`

// runFiles writes a project of files (lakehouse.yml added) and runs it
// into bench.dev on the process launcher, checking that a failed run left
// the target where it was.
func (l *benchLake) runFiles(t *testing.T, files map[string]string, mods ...func(*pipeline.Options)) (*runrec.Record, error) {
	t.Helper()
	return l.runDir(t, t.TempDir(), files, mods...)
}

func (l *benchLake) runDir(t *testing.T, dir string, files map[string]string, mods ...func(*pipeline.Options)) (*runrec.Record, error) {
	t.Helper()
	return l.runCtx(context.Background(), t, dir, files, mods...)
}

func (l *benchLake) runCtx(ctx context.Context, t *testing.T, dir string, files map[string]string, mods ...func(*pipeline.Options)) (*runrec.Record, error) {
	t.Helper()
	if _, ok := files["lakehouse.yml"]; !ok {
		files["lakehouse.yml"] = testConfig
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := duckdb.New()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	plan, err := planner.Build(ctx, planner.Options{Dir: dir, Ref: catalog.Ref{Name: "bench.dev"}, Catalog: l.svc,
		Interpreters: envcache.FindPythons(envcache.PythonSearch{}), SQL: eng})
	if err != nil {
		t.Fatal(err)
	}
	before, err := l.svc.GetBranch(ctx, "bench.dev")
	if err != nil {
		t.Fatal(err)
	}
	opts := pipeline.Options{Plan: plan, ProjectDir: dir, Catalog: l.svc, Scans: l.scans, Envs: l.envs,
		Launcher: process.New(process.Config{}), Runs: l.runs, Target: "bench.dev", User: "bench", NoCache: true,
		PreviewRows: 3, ShmDir: t.TempDir()}
	for _, m := range mods {
		m(&opts)
	}
	rec, err := pipeline.Run(ctx, opts)
	if err != nil {
		after, gerr := l.svc.GetBranch(context.Background(), "bench.dev")
		if gerr != nil || after.Head != before.Head {
			t.Errorf("a failed run moved bench.dev from %s to %s (%v)", before.Head, after.Head, gerr)
		}
	}
	return rec, err
}

// TestRunDictionaryOutput: a pandas categorical / dictionary-encoded
// column used to panic the executor (arrow-go's mapped IPC reader cannot
// read dictionaries); it must be fingerprinted, previewed, read by SQL and
// written as a table.
func TestRunDictionaryOutput(t *testing.T) {
	l := newBenchLake(t, 1000)
	rec, err := l.runFiles(t, map[string]string{
		"models.py": `import lakehouse

@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def cats(data=lakehouse.Model("events", columns=["id", "country"])):
    import pyarrow as pa
    return pa.table({"id": data["id"], "country": data["country"].dictionary_encode()})
`,
		"by_country.sql": "-- lakehouse: materialization=REPLACE\nSELECT country, count(*) AS n FROM cats GROUP BY country\n",
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if m := rec.Model("cats"); m.Rows != 1000 || m.Fingerprint == "" || m.Table != "bench.cats" {
		t.Errorf("cats: %+v", m)
	}
	if m := rec.Model("by_country"); m.Rows != 8 {
		t.Errorf("by_country has %d rows, want 8", m.Rows)
	}
}

// TestRunFailureSkipsOthers: when one model fails, a model it stopped is
// skipped, not failed with the other model's error.
func TestRunFailureSkipsOthers(t *testing.T) {
	l := newBenchLake(t, 100)
	rec, err := l.runFiles(t, map[string]string{
		"models.py": `import lakehouse

@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def boom(data=lakehouse.Model("events")):
    raise ValueError("boom")

@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def slow(data=lakehouse.Model("events")):
    import time
    time.sleep(30)
    return data

@lakehouse.model()
@lakehouse.python("3.11")
def after(data=lakehouse.Model("slow")):
    return data
`,
	})
	var re *pipeline.RunError
	if !errors.As(err, &re) || re.Model != "boom" || !strings.Contains(err.Error(), "ValueError: boom") {
		t.Fatalf("err %v, want boom's ValueError", err)
	}
	if rec.Status != runrec.StatusFailed || rec.FailedModel != "boom" {
		t.Errorf("record: status %s failed %q", rec.Status, rec.FailedModel)
	}
	for name, want := range map[string]string{"boom": runrec.StateFailed, "slow": runrec.StateSkipped, "after": runrec.StateSkipped} {
		if m := rec.Model(name); m.State != want || (want == runrec.StateSkipped && m.Error != "") {
			t.Errorf("%s: state %s error %q, want %s", name, m.State, m.Error, want)
		}
	}
}

// TestRunBadOutputs: outputs a model cannot have fail the run with a
// message that says what to return, and leave the target unchanged.
func TestRunBadOutputs(t *testing.T) {
	l := newBenchLake(t, 100)
	for _, c := range []struct{ body, want string }{
		{"return True", "returned a bool (only an expectation returns True or False)"},
		{"return None", "returned None"},
		{"import pyarrow as pa\n    return pa.table({})", "model bad returned a table without columns"},
	} {
		_, err := l.runFiles(t, map[string]string{"models.py": `import lakehouse

@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def bad(data=lakehouse.Model("events")):
    ` + c.body + "\n"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.body, err, c.want)
		}
	}
}

// TestRunCacheSeesImportedModules: a model's cached output is not reused
// once a module it imports has changed.
func TestRunCacheSeesImportedModules(t *testing.T) {
	l := newBenchLake(t, 100)
	dir, cache := t.TempDir(), t.TempDir()
	withCache := func(o *pipeline.Options) { o.NoCache, o.CacheDir = false, cache }
	files := map[string]string{
		"helper.py": "FACTOR = 2\n",
		"models.py": `import lakehouse

@lakehouse.model()
@lakehouse.python("3.11")
def scaled(data=lakehouse.Model("events", columns=["id"])):
    import pyarrow.compute as pc
    from helper import FACTOR
    return data.append_column("x", pc.multiply(data["id"], FACTOR))
`,
	}
	state := func(rec *runrec.Record, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		return rec.Model("scaled").State
	}
	state(l.runDir(t, dir, files, withCache))
	if s := state(l.runDir(t, dir, files, withCache)); s != runrec.StateReused {
		t.Fatalf("unchanged project: scaled is %s, want reused", s)
	}
	files["helper.py"] = "FACTOR = 3\n"
	if s := state(l.runDir(t, dir, files, withCache)); s != runrec.StateDone {
		t.Errorf("helper.py changed: scaled is %s, want done (run again)", s)
	}
}

// TestRunInternalPanic: a panic while a model runs fails the run (record,
// branch, target as for any failure) instead of killing the process; and
// a negative KeepFailed deletes the failed run's branch at once.
func TestRunInternalPanic(t *testing.T) {
	l := newBenchLake(t, 100)
	rec, err := l.runFiles(t, map[string]string{"models.py": `import lakehouse

@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def first(data=lakehouse.Model("events")):
    return data

@lakehouse.model()
@lakehouse.python("3.11")
def second(data=lakehouse.Model("first")):
    return data
`}, func(o *pipeline.Options) {
		o.KeepFailed = -1
		o.Events = func(ev pipeline.Event) {
			if ev.Kind == pipeline.EventState && ev.Model == "second" && ev.State == runrec.StateRunning {
				panic("injected")
			}
		}
	})
	if err == nil || !strings.Contains(err.Error(), "internal error while running second: injected") {
		t.Fatalf("err %v, want the injected panic", err)
	}
	if rec.Status != runrec.StatusFailed || rec.Model("second").State != runrec.StateFailed || rec.BranchKept {
		t.Errorf("record: status %s, second %s, branch kept %v", rec.Status, rec.Model("second").State, rec.BranchKept)
	}
	if _, err := l.svc.GetBranch(context.Background(), catalog.BranchName(rec.RunBranch)); err == nil {
		t.Errorf("run branch %s kept with KeepFailed < 0", rec.RunBranch)
	}
}

// TestRunMissingInputColumn: an input asking for a column its model did
// not return names the column and what the model returned.
func TestRunMissingInputColumn(t *testing.T) {
	l := newBenchLake(t, 100)
	_, err := l.runFiles(t, map[string]string{"models.py": `import lakehouse

@lakehouse.model()
@lakehouse.python("3.11")
def src(data=lakehouse.Model("events", columns=["id", "usd"])):
    return data

@lakehouse.model()
@lakehouse.python("3.11")
def reader(data=lakehouse.Model("src", columns=["id", "nosuch"])):
    return data
`})
	// Unfused the executor checks, fused the interpreter: same words.
	want := "input src asks for column(s) nosuch, which src did not return (it returned id, usd)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want %q", err, want)
	}
	var re *pipeline.RunError
	if !errors.As(err, &re) || re.Model != "reader" {
		t.Fatalf("err %v, want a failure of reader", err)
	}
}

// TestRunOverwriteFilter: OVERWRITE_PARTITIONS with overwrite_filter
// replaces the rows the filter matches, not whole partitions (the filter
// used to be ignored: every partition holding an output row was dropped).
func TestRunOverwriteFilter(t *testing.T) {
	l := newBenchLake(t, 100)
	dir := t.TempDir()
	model := func(body string) map[string]string {
		// The filter's $cut is a parameter (10).
		return map[string]string{"lakehouse.yml": testConfig + "parameters:\n  cut: {type: int, default: 10}\n", "models.py": `import lakehouse

@lakehouse.model(materialization="OVERWRITE_PARTITIONS", partitioned_by=["country"], overwrite_filter="id < $cut")
@lakehouse.python("3.11")
def ow(data=lakehouse.Model("events")):
    import pyarrow.compute as pc
    ` + body + "\n"}
	}
	if _, err := l.runDir(t, dir, model("return data")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.runDir(t, dir, model(`t = data.filter(pc.less(data["id"], 10))
    return t.set_column(1, "usd", pc.multiply(t["usd"], 0.0))`)); err != nil {
		t.Fatal(err)
	}
	q, err := query.Run(context.Background(), l.svc, l.scans, query.Request{Ref: catalog.Ref{Name: "bench.dev"},
		SQL: "SELECT count(*) AS n, count(*) FILTER (WHERE usd = 0) AS zero, count(DISTINCT country) AS c FROM bench.ow"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if !q.Reader.Next() {
		t.Fatal(q.Reader.Err())
	}
	rec := q.Reader.RecordBatch()
	n, zero := rec.Column(0).(*array.Int64).Value(0), rec.Column(1).(*array.Int64).Value(0)
	if n != 100 || zero < 10 {
		t.Errorf("bench.ow has %d rows, %d with usd 0; want 100 rows, the 10 with id < 10 at 0", n, zero)
	}
}

// TestRunCancelled: an interrupted run is cancelled, blames no model and
// removes its folder.
func TestRunCancelled(t *testing.T) {
	l := newBenchLake(t, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shm := t.TempDir()
	rec, err := l.runCtx(ctx, t, t.TempDir(), map[string]string{"models.py": `import lakehouse

@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def hang(data=lakehouse.Model("events")):
    import time
    print("hanging", flush=True)
    time.sleep(60)
    return data
`}, func(o *pipeline.Options) {
		o.ShmDir = shm
		o.Events = func(ev pipeline.Event) {
			if ev.Kind == pipeline.EventLog && ev.Line.Text == "hanging" {
				cancel()
			}
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if rec.Status != runrec.StatusCancelled || rec.FailedModel != "" || rec.BranchKept {
		t.Errorf("record: status %s, failed model %q, branch kept %v", rec.Status, rec.FailedModel, rec.BranchKept)
	}
	if ents, _ := os.ReadDir(shm); len(ents) != 0 {
		t.Errorf("run folder left behind: %v", ents)
	}
}

// TestRunExpectationResults: an expectation may return a bool, a numpy or
// pyarrow boolean scalar; anything else is a clear error.
func TestRunExpectationResults(t *testing.T) {
	l := newBenchLake(t, 100)
	for _, c := range []struct {
		body, want string
		ok         bool
	}{
		{"return data.num_rows > 0", "", true},
		{"import pyarrow.compute as pc\n    return pc.all(pc.greater_equal(data['id'], 0))", "", true},
		{"import pyarrow.compute as pc\n    return pc.all(pc.less(data['id'], 0))", "", false},
		{"return 1", "an expectation must return True or False, not int", false},
		{"return data", "an expectation must return True or False, not Table", false},
	} {
		rec, err := l.runFiles(t, map[string]string{"models.py": `import lakehouse

@lakehouse.expectation()
@lakehouse.python("3.11")
def check(data=lakehouse.Model("events", columns=["id"])):
    ` + c.body + "\n"}, func(o *pipeline.Options) { o.Strict = true })
		switch {
		case c.want != "":
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q: err %v, want %q", c.body, err, c.want)
			}
		case c.ok && err != nil:
			t.Errorf("%q: %v", c.body, err)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), "expectation check failed")):
			t.Errorf("%q: err %v, want a failed expectation", c.body, err)
		}
		_ = rec
	}
}

// TestRunSQLErrorLine: a SQL model's error names the file's line DuckDB
// points at, not the header's first line.
func TestRunSQLErrorLine(t *testing.T) {
	l := newBenchLake(t, 100)
	_, err := l.runFiles(t, map[string]string{
		"bad.sql": "\n\n-- A comment.\n-- lakehouse: materialization=REPLACE\nSELECT id,\n       usd,\n       nosuchcol + 1 AS x\nFROM events\n",
	})
	if err == nil || !strings.Contains(err.Error(), "model bad (bad.sql:7)") || !strings.Contains(err.Error(), "nosuchcol") {
		t.Fatalf("err = %v, want it at bad.sql:7", err)
	}
}

// TestRunCacheSkipsScans: a model whose output is reused does not read
// its inputs (here the table's data file is gone by the second run).
func TestRunCacheSkipsScans(t *testing.T) {
	l := newBenchLake(t, 100)
	dir, cache := t.TempDir(), t.TempDir()
	withCache := func(o *pipeline.Options) { o.NoCache, o.CacheDir = false, cache }
	files := map[string]string{
		"models.py": `import lakehouse

@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def ids(data=lakehouse.Model("events", columns=["id"])):
    return data
`,
		"by_country.sql": "-- lakehouse: materialization=REPLACE\nSELECT country, count(*) AS n FROM events GROUP BY country\n",
	}
	if _, err := l.runDir(t, dir, files, withCache); err != nil {
		t.Fatalf("first run: %v", err)
	}
	if err := os.Remove(l.data); err != nil {
		t.Fatal(err)
	}
	rec, err := l.runDir(t, dir, files, withCache)
	if err != nil {
		t.Fatalf("second run read its inputs: %v", err)
	}
	for _, m := range []string{"ids", "by_country"} {
		if s := rec.Model(m).State; s != runrec.StateReused {
			t.Errorf("%s is %s, want reused", m, s)
		}
	}
}

// TestRunTimeoutFromConfig: defaults.timeout of lakehouse.yml bounds every
// model: a SQL model's DuckDB query is interrupted, a Python model is
// killed, and each fails as timed out, promptly.
func TestRunTimeoutFromConfig(t *testing.T) {
	l := newBenchLake(t, 100)
	for _, c := range []struct {
		name  string
		files map[string]string
	}{
		{"sql", map[string]string{"slow.sql": "-- lakehouse: materialization=REPLACE\n" +
			"SELECT sum(e.id + r.i) AS s FROM events e, range(100000000) r(i)\n"}},
		{"python", map[string]string{"models.py": `import lakehouse

@lakehouse.model(materialization="REPLACE")
def slow(data=lakehouse.Model("events")):
    import time
    time.sleep(60)
    return data
`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.files["lakehouse.yml"] = testConfig + "  timeout: 2s\n"
			start := time.Now()
			rec, err := l.runFiles(t, c.files)
			var fe *function.FunctionError
			if !errors.As(err, &fe) || fe.Kind != function.FailureTimeout || fe.Model != "slow" {
				t.Fatalf("err = %v, want model slow timed out", err)
			}
			if !strings.Contains(err.Error(), "model slow timed out after 2s") {
				t.Errorf("err = %q", err)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("the run took %s", d)
			}
			if rec == nil || rec.FailedModel != "slow" {
				t.Errorf("record: %+v", rec)
			}
		})
	}
}

// TestRunLogLimit: a run's stored log stops at its limit and ends with the
// line counting what was dropped, while events still carry every line.
func TestRunLogLimit(t *testing.T) {
	l := newBenchLake(t, 100)
	var events int
	rec, err := l.runFiles(t, map[string]string{"models.py": `import lakehouse

@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def chatty(data=lakehouse.Model("events")):
    for i in range(2000):
        print("line", i, "x" * 50)
    return data
`}, func(o *pipeline.Options) {
		o.LogLimit = 16_000
		o.Events = func(ev pipeline.Event) {
			if ev.Kind == pipeline.EventLog {
				events++
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if events != 2000 {
		t.Errorf("%d log events, want 2000", events)
	}
	var lines []runrec.LogLine
	if err := l.runs.ReadLogs(rec.ID, func(ll runrec.LogLine) error { lines = append(lines, ll); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(lines) < 50 || len(lines) > 400 {
		t.Fatalf("%d lines stored", len(lines))
	}
	last := lines[len(lines)-1].Text
	if !strings.HasPrefix(last, "log limit of 16 KB reached: ") || !strings.Contains(last, " further lines (") {
		t.Errorf("last line %q", last)
	}
}

// TestRunCancelledSQL: cancelling a run while a SQL model's long cross
// join runs interrupts DuckDB: the run ends cancelled within a bounded
// time (the query alone would run for many minutes) and bench.dev is
// untouched (runCtx checks its head).
func TestRunCancelledSQL(t *testing.T) {
	l := newBenchLake(t, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	at := make(chan time.Time, 1)
	start := time.Now()
	rec, err := l.runCtx(ctx, t, t.TempDir(), map[string]string{
		"joined.sql": "-- lakehouse: materialization=REPLACE\n" +
			"SELECT e.id, count(*) AS n, sum(r.i % 7) AS s FROM events e CROSS JOIN range(100000000000) r(i) GROUP BY e.id\n",
	}, func(o *pipeline.Options) {
		o.Events = func(ev pipeline.Event) {
			if ev.Kind == pipeline.EventState && ev.Model == "joined" && ev.State == runrec.StateRunning {
				time.AfterFunc(300*time.Millisecond, func() { at <- time.Now(); cancel() })
			}
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v after %s, want context.Canceled", err, time.Since(start))
	}
	if d := time.Since(<-at); d > 5*time.Second {
		t.Errorf("the run ended %s after it was cancelled", d)
	}
	if rec.Status != runrec.StatusCancelled || rec.BranchKept {
		t.Errorf("record: status %s, branch kept %v", rec.Status, rec.BranchKept)
	}
}
