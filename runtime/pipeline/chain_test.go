package pipeline_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// chainModels: a → b → c (fusable: one reader each, same environment,
// not materialized on the way), c read by a SQL model and an expectation.
const chainModels = `import lakehouse

@lakehouse.model()
@lakehouse.python("3.11", pip={"pandas": "2.2.3"})
def a(data=lakehouse.Model("events", columns=["id", "usd", "country"])):
    import pyarrow.compute as pc
    print("a sees", data.num_rows)
    print("\x1elakehouse-step 2 5")  # looks like the runner's step marker, is not
    print("no newline", end="")  # the runner's marker for b follows on this line
    return data.append_column("usd2", pc.multiply(data["usd"], 2.0))

@lakehouse.model()
@lakehouse.python("3.11", pip={"pandas": "2.2.3"})
def b(data=lakehouse.Model("a"), limit=lakehouse.Parameter("limit")):
    print("b sees", data.num_rows, "columns", ",".join(data.column_names))
    df = data.to_pandas()
    return df[df["usd"] > limit]

@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11", pip={"pandas": "2.2.3"})
def c(data=lakehouse.Model("b", columns=["id", "usd2", "country"]), more=lakehouse.Model("events", columns=["id"])):
    import pyarrow as pa
    print("c sees", data.num_rows, "of", more.num_rows, "columns", ",".join(data.column_names))
    return data.sort_by("id")

@lakehouse.expectation()
@lakehouse.python("3.11", pip={"pandas": "2.2.3"})
def c_nonempty(data=lakehouse.Model("c")):
    return data.num_rows > 0
`

const chainConfig = testConfig + `parameters:
  limit:
    type: float
    default: 500.0
`

func noPreview(o *pipeline.Options) { o.PreviewRows = 0 }

// unfused runs the plan as planned with planner.Options.NoFuse: no chains.
func unfused(o *pipeline.Options) { o.Plan.Chains, o.Plan.NoFuse = [][]string{}, true }

// TestFusedChain: a chain runs in one interpreter and gives the same
// output as unfused, with each model's state, rows and log lines its own.
func TestFusedChain(t *testing.T) {
	l := newBenchLake(t, 1000)
	files := func() map[string]string {
		return map[string]string{"models.py": chainModels, "lakehouse.yml": chainConfig,
			"by_country.sql": "-- lakehouse: materialization=REPLACE\nSELECT country, count(*) AS n FROM c GROUP BY country\n"}
	}
	previews := map[string]string{}
	fused, err := l.runFiles(t, files(), func(o *pipeline.Options) {
		o.Events = func(ev pipeline.Event) {
			if ev.Kind == pipeline.EventPreview {
				previews[ev.Model] = ev.Text
			}
		}
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	plain, err := l.runFiles(t, files(), noPreview, unfused)
	if err != nil {
		t.Fatalf("unfused run: %v", err)
	}
	if fused.Flags.NoFuse || !plain.Flags.NoFuse {
		t.Errorf("no_fuse recorded fused %v, unfused %v", fused.Flags.NoFuse, plain.Flags.NoFuse)
	}
	for name, into := range map[string]string{"a": "", "b": "a", "c": "a", "c_nonempty": "", "by_country": ""} {
		m := fused.Model(name)
		if m.FusedInto != into || m.State != runrec.StateDone {
			t.Errorf("%s: fused into %q state %s, want %q done", name, m.FusedInto, m.State, into)
		}
		if p := plain.Model(name); p.FusedInto != "" || p.Rows != m.Rows {
			t.Errorf("%s: unfused %+v, fused rows %d", name, p, m.Rows)
		}
	}
	if fused.Model("a").Rows != 1000 || fused.Model("b").Rows == 0 || fused.Model("b").Rows >= 1000 {
		t.Errorf("rows a %d b %d", fused.Model("a").Rows, fused.Model("b").Rows)
	}
	if f, p := fused.Model("c").Fingerprint, plain.Model("c").Fingerprint; f == "" || f != p {
		t.Errorf("c fingerprint fused %q unfused %q", f, p)
	}
	if fused.Model("c").Table != "bench.c" || fused.Model("by_country").Rows != 8 {
		t.Errorf("c %+v by_country %+v", fused.Model("c"), fused.Model("by_country"))
	}
	for _, m := range []string{"a", "b", "c", "by_country"} {
		if n := strings.Count(previews[m], "\n"); n < 3 {
			t.Errorf("preview of %s: %q", m, previews[m])
		}
	}
	t.Logf("preview of b:\n%s", previews["b"])
	lines := map[string][]string{}
	if err := l.runs.ReadLogs(fused.ID, func(ll runrec.LogLine) error {
		if ll.Stream == "stdout" {
			lines[ll.Model] = append(lines[ll.Model], ll.Text)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a": "a sees 1000|\x1elakehouse-step 2 5|no newline",
		"b": "b sees 1000 columns id,usd,country,usd2",
		"c": "c sees " + itoa(fused.Model("b").Rows) + " of 1000 columns id,usd2,country",
	}
	for m, w := range want {
		if got := strings.Join(lines[m], "|"); got != w {
			t.Errorf("%s logged %q, want %q", m, got, w)
		}
	}
}

func itoa(n int64) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// TestFusedChainFailure: the model that raised fails, the ones before
// are done, the ones after skipped, and the target is unchanged.
func TestFusedChainFailure(t *testing.T) {
	l := newBenchLake(t, 100)
	models := strings.Replace(chainModels, `    df = data.to_pandas()`, `    raise ValueError("b cannot")`, 1)
	rec, err := l.runFiles(t, map[string]string{"models.py": models, "lakehouse.yml": chainConfig}, noPreview)
	var re *pipeline.RunError
	if !errors.As(err, &re) || re.Model != "b" || !strings.Contains(err.Error(), "ValueError: b cannot") {
		t.Fatalf("err %v, want b's ValueError", err)
	}
	if rec.FailedModel != "b" || !strings.Contains(rec.Model("b").Traceback, "models.py") {
		t.Errorf("failed %q, b %+v", rec.FailedModel, rec.Model("b"))
	}
	for name, want := range map[string]string{"a": runrec.StateDone, "b": runrec.StateFailed, "c": runrec.StateSkipped, "c_nonempty": runrec.StateSkipped} {
		if m := rec.Model(name); m.State != want {
			t.Errorf("%s: state %s, want %s", name, m.State, want)
		}
	}
}

// TestFusedChainTimeout: a model's timeout counts from its own start
// and fails that model, not the chain's first.
func TestFusedChainTimeout(t *testing.T) {
	l := newBenchLake(t, 100)
	models := strings.Replace(chainModels, "def b(", "@lakehouse.resources(timeout=2)\ndef b(", 1)
	models = strings.Replace(models, `    df = data.to_pandas()`, "    import time\n    time.sleep(60)\n    df = data.to_pandas()", 1)
	start := time.Now()
	rec, err := l.runFiles(t, map[string]string{"models.py": models, "lakehouse.yml": chainConfig}, noPreview)
	var fe *function.FunctionError
	if !errors.As(err, &fe) || fe.Model != "b" || fe.Kind != function.FailureTimeout {
		t.Fatalf("err %v, want b's timeout", err)
	}
	if d := time.Since(start); d > 40*time.Second {
		t.Errorf("the run took %s: the timeout did not stop it", d)
	}
	if rec.FailedModel != "b" || rec.Model("a").State != runrec.StateDone || rec.Model("b").State != runrec.StateFailed {
		t.Errorf("record: failed %q, a %s, b %s", rec.FailedModel, rec.Model("a").State, rec.Model("b").State)
	}
}

// TestFusedChainCache: an unchanged chain is reused from its last
// model's cached output without running.
func TestFusedChainCache(t *testing.T) {
	l := newBenchLake(t, 100)
	cache := t.TempDir()
	dir := t.TempDir()
	withCache := func(o *pipeline.Options) { o.PreviewRows, o.NoCache, o.CacheDir = 0, false, cache }
	files := func() map[string]string {
		return map[string]string{"models.py": chainModels, "lakehouse.yml": chainConfig}
	}
	first, err := l.runDir(t, dir, files(), withCache)
	if err != nil {
		t.Fatal(err)
	}
	second, err := l.runDir(t, dir, files(), withCache)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if m := second.Model(name); m.State != runrec.StateReused {
			t.Errorf("%s: state %s, want reused", name, m.State)
		}
	}
	if f, s := first.Model("c").Fingerprint, second.Model("c").Fingerprint; f == "" || f != s {
		t.Errorf("fingerprints %q %q", f, s)
	}
}

// TestFusedChainCancelled: cancelling a chain mid-way keeps the models
// already through as done and leaves no run folder.
func TestFusedChainCancelled(t *testing.T) {
	l := newBenchLake(t, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shm := t.TempDir()
	models := strings.Replace(chainModels, `    df = data.to_pandas()`, "    import time\n    print(\"hanging\", flush=True)\n    time.sleep(60)\n    df = data.to_pandas()", 1)
	rec, err := l.runCtx(ctx, t, t.TempDir(), map[string]string{"models.py": models, "lakehouse.yml": chainConfig}, func(o *pipeline.Options) {
		o.ShmDir, o.PreviewRows = shm, 0
		o.Events = func(ev pipeline.Event) {
			if ev.Kind == pipeline.EventLog && ev.Line.Text == "hanging" {
				cancel()
			}
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	for name, want := range map[string]string{"a": runrec.StateDone, "b": runrec.StateSkipped, "c": runrec.StateSkipped} {
		if m := rec.Model(name); m.State != want {
			t.Errorf("%s: state %s, want %s", name, m.State, want)
		}
	}
	if rec.Status != runrec.StatusCancelled {
		t.Errorf("status %s", rec.Status)
	}
	if ents, _ := os.ReadDir(shm); len(ents) != 0 {
		t.Errorf("run folder left behind: %v", ents)
	}
}

// TestFusedChainScanFails: the interpreter starts while inputs are
// scanned; a scan that fails stops it and fails the model it was for.
func TestFusedChainScanFails(t *testing.T) {
	l := newBenchLake(t, 100)
	shm := t.TempDir()
	models := strings.Replace(chainModels, `more=lakehouse.Model("events", columns=["id"])`,
		`more=lakehouse.Model("events", columns=["id"], filter="CAST(country AS INTEGER) > 1")`, 1)
	start := time.Now()
	rec, err := l.runFiles(t, map[string]string{"models.py": models, "lakehouse.yml": chainConfig}, func(o *pipeline.Options) {
		o.ShmDir, o.PreviewRows = shm, 0
	})
	var re *pipeline.RunError
	if !errors.As(err, &re) || re.Model != "c" || !strings.Contains(err.Error(), "reading bench.events for c") {
		t.Fatalf("err %v, want c's scan failure", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s", d)
	}
	if m := rec.Model("c"); m.State != runrec.StateFailed {
		t.Errorf("c: %+v", m)
	}
	if ents, _ := os.ReadDir(shm); len(ents) != 0 {
		t.Errorf("run folder left behind: %v", ents)
	}
}

// TestPlanChains: a run fuses the chains its plan lists, no others.
func TestPlanChains(t *testing.T) {
	l := newBenchLake(t, 10)
	files := func() map[string]string {
		return map[string]string{"models.py": chainModels, "lakehouse.yml": chainConfig}
	}
	var planned [][]string
	rec, err := l.runFiles(t, files(), noPreview, func(o *pipeline.Options) {
		planned = o.Plan.Chains
		o.Plan.Chains = [][]string{{"a", "b"}} // c on its own
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(planned) != 1 || strings.Join(planned[0], ",") != "a,b,c" {
		t.Errorf("planned chains %v, want [[a b c]]", planned)
	}
	for name, into := range map[string]string{"a": "", "b": "a", "c": "", "c_nonempty": ""} {
		if m := rec.Model(name); m.FusedInto != into || m.State != runrec.StateDone {
			t.Errorf("%s: fused into %q state %s, want %q done", name, m.FusedInto, m.State, into)
		}
	}
}

// TestPlanChainsInvalid: a plan whose chains its models cannot run as
// one is refused before anything runs.
func TestPlanChainsInvalid(t *testing.T) {
	l := newBenchLake(t, 10)
	cases := []struct {
		name   string
		chains [][]string
		want   string
	}{
		{"one model", [][]string{{"a"}}, "fewer than two models"},
		{"unknown model", [][]string{{"a", "nope"}}, "not a model of the plan"},
		{"model twice", [][]string{{"a", "b"}, {"b", "c"}}, "in two plan chains"},
		{"not read", [][]string{{"a", "c"}}, "c does not read a"},
		{"sql", [][]string{{"c", "by_country"}}, "not a Python model"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"models.py": chainModels, "lakehouse.yml": chainConfig,
				"by_country.sql": "-- lakehouse: materialization=REPLACE\nSELECT country, count(*) AS n FROM c GROUP BY country\n"}
			rec, err := l.runFiles(t, files, noPreview, func(o *pipeline.Options) { o.Plan.Chains = tc.chains })
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) || rec != nil {
				t.Errorf("err %v (record %v), want ErrInvalidArgument with %q", err, rec, tc.want)
			}
		})
	}
}
