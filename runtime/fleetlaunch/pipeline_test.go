package fleetlaunch

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// pipelineProject: a SQL model made on the control plane, a parent on a
// worker, a fan-out of three children and a model joining them back.
var pipelineProject = map[string]string{
	"lakehouse.yml": "project:\n  name: t\ndefaults:\n  python: \"3.11\"\n  namespace: bench\n",
	"numbers.sql":   "SELECT range AS x FROM range(1, 7)\n",
	"models.py": `import lakehouse
import pyarrow as pa
import pyarrow.compute as pc


@lakehouse.model()
@lakehouse.python("3.11")
def doubled(data=lakehouse.Model("numbers")):
    return pa.table({"x": pc.multiply(data["x"], 2)})


@lakehouse.model()
@lakehouse.python("3.11")
def a(data=lakehouse.Model("doubled")):
    return pa.table({"x": pc.add(data["x"], 1)})


@lakehouse.model()
@lakehouse.python("3.11")
def b(data=lakehouse.Model("doubled")):
    return pa.table({"x": pc.add(data["x"], 2)})


@lakehouse.model()
@lakehouse.python("3.11")
def c(data=lakehouse.Model("doubled")):
    return pa.table({"x": pc.add(data["x"], 3)})


@lakehouse.model(materialization="REPLACE")
@lakehouse.python("3.11")
def total(a=lakehouse.Model("a"), b=lakehouse.Model("b"), c=lakehouse.Model("c")):
    return pa.table({"x": pa.chunked_array([a["x"], b["x"], c["x"]])})
`,
}

// runOnFleet writes files as a project, plans it on a branch of a fresh
// catalog and runs it with f's Launcher; opts fills the run's options
// beyond the plan, the stores and the fleet (nil: defaults).
func runOnFleet(tb testing.TB, f *testFleet, files map[string]string, noFuse bool, opts func(*pipeline.Options)) *runrec.Record {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	store, err := bolt.Open(filepath.Join(dir, "catalog.db"), bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	format, err := iceberg.New(iceberg.Options{Warehouse: filepath.Join(dir, "warehouse")})
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := catalog.NewLocal(ctx, store, format, catalog.LocalOptions{Author: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.CreateBranch(ctx, "bench.dev", catalog.Ref{Name: "main"}); err != nil {
		tb.Fatal(err)
	}
	if _, err := svc.CreateNamespace(ctx, "bench.dev", "bench", catalog.CommitOptions{}); err != nil {
		tb.Fatal(err)
	}
	runs, err := runrec.Open(filepath.Join(dir, "runs"))
	if err != nil {
		tb.Fatal(err)
	}
	project := filepath.Join(dir, "project")
	os.MkdirAll(project, 0o755)
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(project, name), []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	eng, err := duckdb.New()
	if err != nil {
		tb.Fatal(err)
	}
	defer eng.Close()
	plan, err := planner.Build(ctx, planner.Options{Dir: project, Ref: catalog.Ref{Name: "bench.dev"}, Catalog: svc,
		Interpreters: envcache.FindPythons(envcache.PythonSearch{}), SQL: eng, NoFuse: noFuse})
	if err != nil {
		tb.Fatal(err)
	}
	o := pipeline.Options{Plan: plan, ProjectDir: project, Catalog: svc, Scans: format,
		Envs: envtest.Shared(tb), Launcher: f.l, Runs: runs, Target: "bench.dev", User: "test", NoCache: true,
		ShmDir: f.dir, ID: f.run}
	if opts != nil {
		opts(&o)
	}
	rec, err := pipeline.Run(ctx, o)
	if err != nil {
		tb.Fatalf("run: %v", err)
	}
	return rec
}

// TestPipelineOnTheFleet runs a whole pipeline with the Launcher.
func TestPipelineOnTheFleet(t *testing.T) {
	f := newTestFleet(t, "w1", "w2", "w3")
	rec := runOnFleet(t, f, pipelineProject, false, nil)
	for _, m := range []string{"doubled", "a", "b", "c", "total"} {
		got := rec.Model(m)
		if got == nil || got.Worker == "" || got.Attempts != 0 {
			t.Fatalf("model %s: %+v, want a worker", m, got)
		}
		t.Logf("%s ran on %s", m, got.Worker)
	}
	if m := rec.Model("total"); m.Rows != 18 || m.Table != "bench.total" {
		t.Errorf("total: %+v", m)
	}
	if rec.Launcher != "fleet" {
		t.Errorf("launcher %q", rec.Launcher)
	}
}
