package query_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

var (
	benchRows   = flag.Int("bench-rows", 10_000_000, "rows of the lineitem table of the benchmarks")
	benchReport = flag.Bool("bench-report", false, "run TestBenchReport: ours vs raw DuckDB, as a table")
	benchOnlyPQ = flag.Bool("bench-parquet", false, "TestBenchReport: only the rows of Parquet output vs DuckDB's COPY")
)

const (
	q1 = `SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price,
  sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
  avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, avg(l_discount) AS avg_disc, count(*) AS count_order
FROM lineitem WHERE l_shipdate <= DATE '1998-09-02' GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus`
	q6 = `SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24`
	qStar = `SELECT * FROM lineitem`
)

// benchData is the lineitem table shared by the benchmarks of one process;
// the generated Parquet file is cached under the temp directory across runs.
var benchData struct {
	once  sync.Once
	svc   *catalog.Local
	files []string
	dir   string
}

type onceTB struct{ testing.TB }

func (o onceTB) Cleanup(func()) {} // keep the shared service open for the process

func lineitem(tb testing.TB) (*catalog.Local, []string) {
	benchData.once.Do(func() {
		cache := filepath.Join(os.TempDir(), "lakehouse-query-bench")
		if err := os.MkdirAll(cache, 0o755); err != nil {
			tb.Fatal(err)
		}
		dir, err := os.MkdirTemp(cache, "run-")
		if err != nil {
			tb.Fatal(err)
		}
		// The Parquet source is shared; each run imports it into a fresh catalog.
		src := filepath.Join(cache, fmt.Sprintf("lineitem-%d.parquet", *benchRows))
		if _, err := os.Stat(src); err != nil {
			writeLineitem(tb, src+".tmp", *benchRows)
			if err := os.Rename(src+".tmp", src); err != nil {
				tb.Fatal(err)
			}
		}
		if err := os.Symlink(src, filepath.Join(dir, filepath.Base(src))); err != nil {
			tb.Fatal(err)
		}
		benchData.dir = dir
		benchData.svc, _ = bigTable(onceTB{tb}, dir, *benchRows)
		plan, err := query.Plan(context.Background(), benchData.svc, scans, query.Request{SQL: qStar, Ref: catalog.Ref{Name: "main"}, Namespace: "bench"})
		if err != nil {
			tb.Fatal(err)
		}
		benchData.files = plan.Tables[0].Files
	})
	if benchData.svc == nil {
		tb.Fatal("no benchmark table")
	}
	return benchData.svc, benchData.files
}

// ours runs sql through the query path (plan, fresh DuckDB, sandbox,
// stream) and drains or writes the result.
func ours(tb testing.TB, svc catalog.Service, sql, format string) int64 {
	res, err := query.Run(context.Background(), svc, scans, query.Request{SQL: sql, Ref: catalog.Ref{Name: "main"}, Namespace: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Close()
	return drain(tb, res.Reader, format)
}

// raw runs sql in a fresh plain DuckDB with the table replaced by
// read_parquet over the same files.
func raw(tb testing.TB, files []string, sql, format string) int64 {
	db, err := duckdb.Open(duckdb.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	lits := make([]string, len(files))
	for i, f := range files {
		lits[i] = duckdb.Literal(f)
	}
	sql = strings.Replace(sql, "FROM lineitem", "FROM read_parquet(["+strings.Join(lits, ", ")+"])", 1)
	if err := db.Lock("main", files); err != nil {
		tb.Fatal(err)
	}
	r, err := db.Query(context.Background(), sql)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Release()
	return drain(tb, r, format)
}

// rawCopy is DuckDB's own Parquet writer: COPY (SELECT * FROM
// read_parquet(files)) TO a file.
func rawCopy(tb testing.TB, files []string) {
	out := filepath.Join(benchData.dir, "copy.parquet")
	defer os.Remove(out)
	copyTo(tb, files, out)
}

// copyTo is COPY (SELECT * FROM read_parquet(files)) TO out in a fresh
// DuckDB of this build, with the same limits as a query's.
func copyTo(tb testing.TB, files []string, out string) {
	db, err := duckdb.Open(duckdb.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	lits := make([]string, len(files))
	for i, f := range files {
		lits[i] = duckdb.Literal(f)
	}
	if err := db.Exec("COPY (SELECT * FROM read_parquet([" + strings.Join(lits, ", ") + "])) TO " + duckdb.Literal(out) + " (FORMAT parquet)"); err != nil {
		tb.Fatal(err)
	}
}

// oursExport is `query -O parquet`'s path in process: plan, fresh
// sandboxed DuckDB with a private output directory, DuckDB's COPY.
func oursExport(tb testing.TB, svc catalog.Service, sql string) int64 {
	ctx := context.Background()
	plan, err := query.Plan(ctx, svc, scans, query.Request{SQL: sql, Ref: catalog.Ref{Name: "main"}, Namespace: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp(benchData.dir, ".out-")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := query.ExportParquet(ctx, plan, dir, -1)
	if err != nil {
		tb.Fatal(err)
	}
	return st.Rows
}

// envRawCopy makes the test binary a DuckDB process that runs rawCopy's
// COPY on the files it names (TestRawCopyProcess), for the whole-process
// comparison of TestBenchReport.
const envRawCopy = "LAKEHOUSE_BENCH_RAW_COPY"

// TestRawCopyProcess is DuckDB's COPY as a process of its own: run by
// TestBenchReport with $LAKEHOUSE_BENCH_RAW_COPY = "OUT\tFILE\tFILE…".
func TestRawCopyProcess(t *testing.T) {
	v := os.Getenv(envRawCopy)
	if v == "" {
		t.Skip("run by TestBenchReport")
	}
	parts := strings.Split(v, "\t")
	copyTo(t, parts[1:], parts[0])
}

func drain(tb testing.TB, r interface {
	Next() bool
	Err() error
}, format string) int64 {
	if format != "" {
		var w countingWriter
		st, err := query.Write(&w, r.(query.RecordReader), format, -1)
		if err != nil {
			tb.Fatal(err)
		}
		return st.Rows
	}
	var n int64
	rr := r.(query.RecordReader)
	for rr.Next() {
		n += rr.RecordBatch().NumRows()
	}
	if err := rr.Err(); err != nil {
		tb.Fatal(err)
	}
	return n
}

func BenchmarkQ1(b *testing.B) {
	svc, files := lineitem(b)
	b.Run("ours", func(b *testing.B) {
		for b.Loop() {
			ours(b, svc, q1, "")
		}
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			raw(b, files, q1, "")
		}
	})
}

func BenchmarkQ6(b *testing.B) {
	svc, files := lineitem(b)
	b.Run("ours", func(b *testing.B) {
		for b.Loop() {
			ours(b, svc, q6, "")
		}
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			raw(b, files, q6, "")
		}
	})
}

func BenchmarkSelectStarParquet(b *testing.B) {
	svc, files := lineitem(b)
	b.Run("ours", func(b *testing.B) {
		for b.Loop() {
			ours(b, svc, qStar, query.FormatParquet)
		}
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			raw(b, files, qStar, query.FormatParquet)
		}
	})
	b.Run("ours-export", func(b *testing.B) {
		for b.Loop() {
			oursExport(b, svc, qStar)
		}
	})
	b.Run("raw-copy", func(b *testing.B) {
		for b.Loop() {
			rawCopy(b, files)
		}
	})
}

// smallTable is a catalog with one 100-row table, default.small.
func smallTable(tb testing.TB) *catalog.Local {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	svc := openService(tb, dir, nil)
	var b strings.Builder
	b.WriteString("id,country,usd\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "%d,%s,%d.%02d\n", i, []string{"IT", "FR", "DE"}[i%3], i*7%300, i%100)
	}
	src := writeFile(tb, filepath.Join(dir, "small.csv"), b.String())
	const br = catalog.BranchName("bench.small")
	if _, err := svc.CreateBranch(ctx, br, catalog.Ref{Name: "main"}); err != nil {
		tb.Fatal(err)
	}
	if _, err := svc.ImportTable(ctx, catalog.ImportRequest{Branch: br, Table: catalog.TableIdent{Namespace: "default", Name: "small"}, Sources: []string{src}}); err != nil {
		tb.Fatal(err)
	}
	if _, err := svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: string(br)}, Into: "main"}); err != nil {
		tb.Fatal(err)
	}
	return svc
}

const smallQuery = "SELECT country, count(*) AS n, sum(usd) AS usd FROM small GROUP BY country ORDER BY country"

// BenchmarkSmallQuery: a query on a small table end to end: parse, resolve,
// plan (metadata and manifests), open DuckDB, sandbox, run, drain.
func BenchmarkSmallQuery(b *testing.B) {
	svc := smallTable(b)
	for b.Loop() {
		res, err := query.Run(context.Background(), svc, scans, query.Request{SQL: smallQuery, Ref: catalog.Ref{Name: "main"}})
		if err != nil {
			b.Fatal(err)
		}
		drain(b, res.Reader, "")
		res.Close()
	}
}

// dayTable imports a table of days days, 10 rows a day, partitioned by day:
// one data file per day.
func dayTable(tb testing.TB, days int) *catalog.Local {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	svc := openService(tb, dir, nil)
	var b strings.Builder
	b.WriteString("id,day,v\n")
	d0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := 0; d < days; d++ {
		for i := 0; i < 10; i++ {
			fmt.Fprintf(&b, "%d,%s,%d\n", d*10+i, d0.AddDate(0, 0, d).Format("2006-01-02"), i)
		}
	}
	src := writeFile(tb, filepath.Join(dir, "days.csv"), b.String())
	const br = catalog.BranchName("bench.days")
	must := func(_ any, err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(svc.CreateBranch(ctx, br, catalog.Ref{Name: "main"}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: br, Table: catalog.TableIdent{Namespace: "default", Name: "days"}, Sources: []string{src}, PartitionBy: []string{"day"}}))
	must(svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: string(br)}, Into: "main"}))
	return svc
}

// TestPruning100Files: a one-day filter on a table of 100 daily files
// plans (and DuckDB opens) exactly one file.
func TestPruning100Files(t *testing.T) {
	svc := dayTable(t, 100)
	for _, c := range []struct {
		sql  string
		kept int
	}{
		{"SELECT sum(v) FROM days WHERE day = DATE '2026-02-15'", 1},
		{"SELECT sum(v) FROM days WHERE day BETWEEN '2026-02-15' AND '2026-02-17'", 3},
		{"SELECT sum(v) FROM days WHERE id = 457", 1},
		{"SELECT sum(v) FROM days", 100},
	} {
		res, err := query.Run(context.Background(), svc, scans, query.Request{SQL: c.sql, Ref: catalog.Ref{Name: "main"}})
		if err != nil {
			t.Fatal(err)
		}
		got := readRows(t, res.Reader)
		res.Close()
		ts := res.Plan.Tables[0]
		if len(ts.Files) != c.kept || ts.TotalFiles != 100 {
			t.Errorf("%s: %d of %d files kept, want %d of 100", c.sql, len(ts.Files), ts.TotalFiles, c.kept)
		}
		t.Logf("%s: %d of %d files, result %s", c.sql, len(ts.Files), ts.TotalFiles, got[1])
	}
}

func BenchmarkPruning(b *testing.B) {
	svc := dayTable(b, 100)
	var files int
	for b.Loop() {
		res, err := query.Run(context.Background(), svc, scans, query.Request{SQL: "SELECT sum(v) FROM days WHERE day = DATE '2026-02-15'", Ref: catalog.Ref{Name: "main"}})
		if err != nil {
			b.Fatal(err)
		}
		drain(b, res.Reader, "")
		files = len(res.Plan.Tables[0].Files)
		res.Close()
	}
	b.ReportMetric(float64(files), "files-opened")
}

// TestBenchReport prints ours vs raw DuckDB on the same files, medians of
// alternating runs in one process, and `lakehouse query -O parquet` as a
// process (a binary built from this tree) vs DuckDB's COPY as a process:
//
//	go test ./runtime/query -run TestBenchReport -bench-report -v -timeout 60m
//
// -bench-parquet keeps only the Parquet rows; -bench-rows sets the table's
// size (default 10M rows).
func TestBenchReport(t *testing.T) {
	if !*benchReport {
		t.Skip("run with -bench-report")
	}
	svc, files := lineitem(t)
	// pair times a and b alternately (so drift in machine load hits both)
	// and returns their medians.
	pair := func(runs int, a, b func()) (time.Duration, time.Duration) {
		var da, db []time.Duration
		for i := 0; i < runs; i++ {
			t0 := time.Now()
			a()
			t1 := time.Now()
			b()
			da, db = append(da, t1.Sub(t0)), append(db, time.Since(t1))
		}
		med := func(ds []time.Duration) time.Duration {
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			return ds[len(ds)/2]
		}
		return med(da), med(db)
	}
	var rows []benchRow
	for _, c := range []struct {
		name, sql, format string
		runs              int
	}{
		{"Q1-like aggregate", q1, "", 9},
		{"Q6-like aggregate", q6, "", 9},
		{"SELECT * → Parquet", qStar, query.FormatParquet, 3},
		{"SELECT * → CSV", qStar, query.FormatCSV, 3},
	} {
		if *benchOnlyPQ {
			break
		}
		ours(t, svc, c.sql, c.format) // warm the page cache
		raw(t, files, c.sql, c.format)
		o, r := pair(c.runs, func() { ours(t, svc, c.sql, c.format) }, func() { raw(t, files, c.sql, c.format) })
		rows = append(rows, benchRow{c.name, o, r, c.runs, "raw: read_parquet in a fresh DuckDB, same writer"})
	}
	o, cp := pair(3, func() { ours(t, svc, qStar, query.FormatParquet) }, func() { rawCopy(t, files) })
	rows = append(rows, benchRow{"SELECT * → Parquet", o, cp, 3, "ours: Arrow stream + arrow-go's writer (remote queries); raw: DuckDB's COPY … TO (FORMAT parquet)"})
	oursExport(t, svc, qStar)
	var co, cr time.Duration
	o, cp = pair(5, func() { co += cpuOf(func() { oursExport(t, svc, qStar) }) }, func() { cr += cpuOf(func() { rawCopy(t, files) }) })
	rows = append(rows, benchRow{"SELECT * → Parquet", o, cp, 5, "ours: query.ExportParquet (DuckDB writes; -O parquet); raw: DuckDB's COPY"})
	rows = append(rows, benchRow{"SELECT * → Parquet", co / 5, cr / 5, 5, "CPU (user + system, mean) of the same runs"})

	proc, cmdline := processBench(t, files)
	rows = append(rows, proc...)

	var b strings.Builder
	fmt.Fprintf(&b, "\n%d-row lineitem table, %d file(s); DuckDB %s; medians of alternating runs\n\n", *benchRows, len(files), duckdb.Version())
	fmt.Fprintf(&b, "%-22s %10s %10s %7s %5s  %s\n", "query", "ours", "raw", "ratio", "runs", "")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-22s %9.3fs %9.3fs %6.2fx %5d  %s\n", r.name, r.ours.Seconds(), r.raw.Seconds(), r.ours.Seconds()/r.raw.Seconds(), r.runs, r.note)
	}
	if !*benchOnlyPQ {
		fmt.Fprintf(&b, "%-22s %9.1fms  median of 21 (goal ≤ 50 ms, end to end incl. planning and opening DuckDB)\n", "100-row table query", smallQueryMedian(t).Seconds()*1000)
	}
	fmt.Fprintf(&b, "\nprocess: %s\n", cmdline)
	t.Log(b.String())
}

// smallQueryMedian is the median time of smallQuery end to end.
func smallQueryMedian(t *testing.T) time.Duration {
	small := smallTable(t)
	smallQ := func() {
		res, err := query.Run(context.Background(), small, scans, query.Request{SQL: smallQuery, Ref: catalog.Ref{Name: "main"}})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, res.Reader, "")
		res.Close()
	}
	smallQ()
	var sqs []time.Duration
	for i := 0; i < 21; i++ {
		t0 := time.Now()
		smallQ()
		sqs = append(sqs, time.Since(t0))
	}
	sort.Slice(sqs, func(i, j int) bool { return sqs[i] < sqs[j] })
	return sqs[len(sqs)/2]
}

// cpuOf is the CPU time (user + system) this process spends in f.
func cpuOf(f func()) time.Duration {
	var a, b syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &a)
	f()
	syscall.Getrusage(syscall.RUSAGE_SELF, &b)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(b.Utime) - tv(a.Utime) + tv(b.Stime) - tv(a.Stime)
}

// benchRow is a line of TestBenchReport's table.
type benchRow struct {
	name      string
	ours, raw time.Duration
	runs      int
	note      string
}

// processBench times `lakehouse query -O parquet --out F 'SELECT * FROM
// lineitem'` as a whole process of a binary built from this tree, against
// DuckDB's COPY as a whole process (this test binary, TestRawCopyProcess),
// alternately. It closes the shared catalog, which the command opens.
func processBench(t *testing.T, files []string) ([]benchRow, string) {
	bin := filepath.Join(t.TempDir(), "lakehouse")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	benchData.svc.Close()
	dataDir := filepath.Join(benchData.dir, "catalog")
	out := filepath.Join(benchData.dir, "out.parquet")
	args := []string{"query", "-r", "main", "-n", "bench", "-O", "parquet", "--out", out, qStar}
	env := append(os.Environ(), "LAKEHOUSE_DATA_DIR="+dataDir, "LAKEHOUSE_USER=bench")
	// Each returns the process's CPU time (user + system): on a shared
	// machine a steadier measure of the work done than the wall time.
	ours := func() time.Duration {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", bin, err, b)
		}
		os.Remove(out)
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	raw := func() time.Duration {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRawCopyProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envRawCopy+"="+strings.Join(append([]string{out}, files...), "\t"))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("raw COPY process: %v\n%s", err, b)
		}
		os.Remove(out)
		return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	ours()
	raw()
	const runs = 5
	var do, dr, co, cr []time.Duration
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		c := ours()
		t1 := time.Now()
		co = append(co, c)
		cr = append(cr, raw())
		do, dr = append(do, t1.Sub(t0)), append(dr, time.Since(t1))
	}
	med := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	cmdline := "LAKEHOUSE_DATA_DIR=" + dataDir + " " + bin + " " + strings.Join(args[:len(args)-1], " ") + " '" + qStar + "'"
	return []benchRow{
		{"process → Parquet", med(do), med(dr), runs, "wall; ours: the lakehouse command (below); raw: a process of this build running DuckDB's COPY"},
		{"process → Parquet", med(co), med(cr), runs, "CPU (user + system) of the same processes"},
	}, cmdline
}
