package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// writeEvents writes rows rows of (id, usd, country, qty) as one Parquet
// file (snappy, like most lakes).
func writeEvents(t testing.TB, path string, rows int) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "usd", Type: arrow.PrimitiveTypes.Float64},
		{Name: "country", Type: arrow.BinaryTypes.String},
		{Name: "qty", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pqarrow.NewFileWriter(schema, f,
		parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	countries := []string{"it", "fr", "de", "es", "nl", "us", "gb", "jp"}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	const batch = 1 << 20
	for start := 0; start < rows; start += batch {
		n := min(batch, rows-start)
		for i := start; i < start+n; i++ {
			b.Field(0).(*array.Int64Builder).Append(int64(i))
			b.Field(1).(*array.Float64Builder).Append(float64((i*7919)%100000) / 100)
			b.Field(2).(*array.StringBuilder).Append(countries[(i*31)%len(countries)])
			b.Field(3).(*array.Int64Builder).Append(int64(i % 13))
		}
		rec := b.NewRecordBatch()
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

type benchLake struct {
	svc     catalog.Service
	scans   catalog.TableScanner
	envs    *envcache.Cache
	runs    *runrec.Store
	project string
	data    string // the events table's data file
	work    string
}

func newBenchLake(b testing.TB, rows int) *benchLake {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	src := filepath.Join(dir, "events.parquet")
	writeEvents(b, src, rows)
	store, err := bolt.Open(filepath.Join(dir, "catalog.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	format, err := iceberg.New(iceberg.Options{Warehouse: filepath.Join(dir, "warehouse")})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := catalog.NewLocal(ctx, store, format, catalog.LocalOptions{Author: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Close() })
	if _, err := svc.CreateBranch(ctx, "bench.dev", catalog.Ref{Name: "main"}); err != nil {
		b.Fatal(err)
	}
	if _, err := svc.CreateNamespace(ctx, "bench.dev", "bench", catalog.CommitOptions{}); err != nil {
		b.Fatal(err)
	}
	id := catalog.TableIdent{Namespace: "bench", Name: "events"}
	if _, err := svc.ImportTable(ctx, catalog.ImportRequest{Branch: "bench.dev", Table: id, Sources: []string{src}}); err != nil {
		b.Fatal(err)
	}
	info, err := svc.GetTable(ctx, catalog.Ref{Name: "bench.dev"}, id)
	if err != nil || len(info.Files) != 1 {
		b.Fatalf("events table: %v %+v", err, info)
	}
	runs, err := runrec.Open(filepath.Join(dir, "runs"))
	if err != nil {
		b.Fatal(err)
	}
	project, _ := filepath.Abs(filepath.Join("testdata", "chain5"))
	return &benchLake{svc: svc, scans: format, envs: envtest.Shared(b), runs: runs, project: project,
		data: strings.TrimPrefix(info.Files[0].Path, "file://"), work: dir}
}

// runOurs runs the chain through lakehouse: scan into shared memory, five
// functions handing Arrow IPC files over, the last one written as an
// Iceberg table and merged.
func (l *benchLake) runOurs(b testing.TB, noFuse bool) (time.Duration, *runrec.Record) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	plan, err := planner.Build(ctx, planner.Options{Dir: l.project, Ref: catalog.Ref{Name: "bench.dev"}, Catalog: l.svc,
		Interpreters: envcache.FindPythons(envcache.PythonSearch{}), NoFuse: noFuse})
	if err != nil {
		b.Fatal(err)
	}
	rec, err := pipeline.Run(ctx, pipeline.Options{Plan: plan, ProjectDir: l.project, Catalog: l.svc, Scans: l.scans, Envs: l.envs,
		Launcher: process.New(process.Config{}), Runs: l.runs, Target: "bench.dev", User: "bench", NoCache: true})
	if err != nil {
		b.Fatalf("run: %v", err)
	}
	return time.Since(start), rec
}

const chainStep = `
import sys
sys.path[:0] = sys.argv[5].split(":") + [sys.argv[1]]
import pyarrow.parquet as pq
import models
fn = getattr(models, sys.argv[2])
out = fn(data=pq.read_table(sys.argv[3]))
pq.write_table(out, sys.argv[4])
`

// runBaseline runs the same five functions as five processes, each
// reading its input from and writing its output to a Parquet file.
func (l *benchLake) runBaseline(b testing.TB) time.Duration {
	b.Helper()
	env, err := l.envs.Environment(context.Background(), envcache.Spec{Python: "3.11", Requirements: []string{"pyarrow"}})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	in := l.data
	for i := 1; i <= 5; i++ {
		out := filepath.Join(l.work, fmt.Sprintf("step%d.parquet", i))
		cmd := exec.Command(env.Python.Path, "-s", "-S", "-B", "-c", chainStep, l.project, fmt.Sprintf("step%d", i), in, out,
			strings.Join(env.Paths(), ":"))
		// The allocator setting lakehouse gives functions (see
		// runtime.Prepared.Environ), so that the two differ only in how
		// tables move between the steps.
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + l.work, "MIMALLOC_ALLOW_THP=0"}
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("baseline step%d: %v\n%s", i, err, o)
		}
		in = out
	}
	return time.Since(start)
}

// BenchmarkChain5 compares a five-model pipeline over 10M rows with the
// same functions chained through Parquet files, in the same run:
//
//	go test -tags duckdb_arrow -run '^$' -bench Chain5 -benchtime 5x ./runtime/pipeline
func BenchmarkChain5(b *testing.B) {
	l := newBenchLake(b, 10_000_000)
	l.runOurs(b, false) // warm: environment, page cache
	l.runBaseline(b)
	var ours, unfused, base []time.Duration
	var last, lastUnfused *runrec.Record
	for b.Loop() {
		d, rec := l.runOurs(b, false)
		ours, last = append(ours, d), rec
		d, rec = l.runOurs(b, true)
		unfused, lastUnfused = append(unfused, d), rec
		base = append(base, l.runBaseline(b))
	}
	mo, mu, mb := median(ours), median(unfused), median(base)
	// Each iteration runs ours and the baseline back to back, so their
	// ratio is the figure least moved by other load on the machine.
	var ratios []time.Duration
	for i := range ours {
		ratios = append(ratios, time.Duration(float64(time.Second)*base[i].Seconds()/ours[i].Seconds()))
	}
	paired := median(ratios).Seconds()
	steps := func(rec *runrec.Record) string {
		var s []string
		for _, m := range rec.Models {
			s = append(s, fmt.Sprintf("%s %.2fs", m.Name, m.Seconds))
		}
		return strings.Join(s, ", ")
	}
	b.Logf("\n5-model pipeline over 10M rows (median of %d; median of the per-iteration ratios %.1fx, each %s)\n  %-48s %6.2f s  %5.1fx\n  %-48s %6.2f s  %5.1fx\n  %-48s %6.2f s\n  models (fused):   %s\n  models (unfused): %s",
		len(ours), paired, ratioList(ratios), "lakehouse run (fused chain, one interpreter)", mo.Seconds(), mb.Seconds()/mo.Seconds(),
		"lakehouse run --no-fuse (Arrow IPC in /dev/shm)", mu.Seconds(), mb.Seconds()/mu.Seconds(),
		"Parquet files between the steps (baseline)", mb.Seconds(), steps(last), steps(lastUnfused))
	b.ReportMetric(mu.Seconds(), "s-unfused")
	b.ReportMetric(mo.Seconds(), "s-lakehouse")
	b.ReportMetric(mb.Seconds(), "s-parquet-chain")
	b.ReportMetric(paired, "x-faster")
}

func ratioList(r []time.Duration) string {
	var s []string
	for _, x := range r {
		s = append(s, fmt.Sprintf("%.1fx", x.Seconds()))
	}
	return strings.Join(s, " ")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestChain5Small runs the benchmark's pipeline and baseline on a small
// table, so `go test` keeps both paths working.
func TestChain5Small(t *testing.T) {
	l := newBenchLake(t, 20_000)
	_, rec := l.runOurs(t, false)
	if rec.Status != runrec.StatusSucceeded || rec.Model("step5").Table != "bench.step5" {
		t.Fatalf("run: %+v", rec)
	}
	l.runBaseline(t)
	shm, _ := filepath.Glob("/dev/shm/lakehouse-run-" + rec.ID + "-*")
	if len(shm) != 0 {
		t.Errorf("run folder left behind: %v", shm)
	}
}
