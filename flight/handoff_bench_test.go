//go:build unix

package flight

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
)

// BenchmarkHandoff hands a table over from one worker's data plane to
// another process's /dev/shm over loopback, both ways a data plane
// serves it (the file over HTTP, Flight's http: location, as a data plane
// without TLS is asked; and DoGet), and reads the same
// table from a Parquet file on local disk (snappy, as DuckDB writes it)
// with arrow-go's pqarrow, in one run, then prints a table with the
// ratios:
//
//	go test -tags=duckdb_arrow -run '^$' -bench Handoff -handoff.bytes 1073741824 ./flight
//
// The table (an int64 sequence, a float64, an int32 and a string of 8 to
// 24 letters with 5% nulls) is generated once per process into a temp
// dir and /dev/shm, and removed when the benchmarks end. The Parquet file
// is read from the page cache after it was written: the kindest case for
// Parquet.
var handoffBytes = flag.Int64("handoff.bytes", 64<<20, "size of the table BenchmarkHandoff hands over, in bytes of Arrow data")

// TestMain removes what the benchmarks generated.
func TestMain(m *testing.M) {
	code := m.Run()
	benchData.remove()
	os.Exit(code)
}

// handoffTable is a generated table: its IPC file in /dev/shm and the
// same rows as Parquet on local disk.
type handoffTable struct {
	shm, disk     string // folders
	ipc, parquet  string
	rows          int64
	bytes         int64 // of the IPC file
	parquetBytes  int64
	generatedTook time.Duration
}

// benchData caches the tables generated in this process, by size.
var benchData = &tableCache{tables: map[int64]*handoffTable{}}

type tableCache struct {
	mu     sync.Mutex
	tables map[int64]*handoffTable
}

func (c *tableCache) get(b *testing.B, size int64) *handoffTable {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tables[size]; ok {
		return t
	}
	t, err := generateTable(size)
	if err != nil {
		b.Fatal(err)
	}
	c.tables[size] = t
	return t
}

func (c *tableCache) remove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for size, t := range c.tables {
		os.RemoveAll(t.shm)
		os.RemoveAll(t.disk)
		delete(c.tables, size)
	}
}

var benchSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "price", Type: arrow.PrimitiveTypes.Float64},
	{Name: "qty", Type: arrow.PrimitiveTypes.Int32},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// generateTable writes a table of about size bytes of Arrow data.
func generateTable(size int64) (_ *handoffTable, err error) {
	start := time.Now()
	t := &handoffTable{}
	shmRoot := "/dev/shm"
	if st, err := os.Stat(shmRoot); err != nil || !st.IsDir() {
		shmRoot = ""
	}
	if t.shm, err = os.MkdirTemp(shmRoot, "lakehouse-handoff-bench-"); err != nil {
		return nil, err
	}
	if t.disk, err = os.MkdirTemp("", "lakehouse-handoff-bench-"); err != nil {
		os.RemoveAll(t.shm)
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(t.shm)
			os.RemoveAll(t.disk)
		}
	}()
	t.ipc = filepath.Join(t.shm, "parent.arrow")
	t.parquet = filepath.Join(t.disk, "parent.parquet")
	pf, err := os.Create(t.parquet)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	pw, err := pqarrow.NewFileWriter(benchSchema, pf,
		parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithMaxRowGroupLength(1<<20)),
		pqarrow.DefaultWriterProps())
	if err != nil {
		return nil, err
	}
	// About 40 bytes a row: 8+8+4, 16 letters and an offset of 4.
	gen := &generator{rows: size / 40, rng: rand.New(rand.NewPCG(1, 2)), parquet: pw}
	if t.rows, err = arrowipc.Write(context.Background(), t.ipc, gen); err != nil {
		return nil, err
	}
	gen.Release()
	if gen.err != nil {
		return nil, gen.err
	}
	if err := pw.Close(); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		n    *int64
	}{{t.ipc, &t.bytes}, {t.parquet, &t.parquetBytes}} {
		st, err := os.Stat(f.path)
		if err != nil {
			return nil, err
		}
		*f.n = st.Size()
	}
	t.generatedTook = time.Since(start)
	return t, nil
}

// generator is a reader of random batches of benchSchema, rows in all,
// that writes each batch to the Parquet file too.
type generator struct {
	rows    int64
	next    int64
	rng     *rand.Rand
	parquet *pqarrow.FileWriter
	cur     arrow.RecordBatch
	err     error
}

func (g *generator) Schema() *arrow.Schema { return benchSchema }
func (g *generator) Retain()               {}
func (g *generator) Err() error            { return g.err }

func (g *generator) Release() {
	if g.cur != nil {
		g.cur.Release()
		g.cur = nil
	}
}

func (g *generator) RecordBatch() arrow.RecordBatch { return g.cur }
func (g *generator) Record() arrow.RecordBatch      { return g.cur }

func (g *generator) Next() bool {
	g.Release()
	n := min(int64(arrowipc.BatchRows), g.rows-g.next)
	if n <= 0 || g.err != nil {
		return false
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, benchSchema)
	defer b.Release()
	ids := b.Field(0).(*array.Int64Builder)
	prices := b.Field(1).(*array.Float64Builder)
	qtys := b.Field(2).(*array.Int32Builder)
	names := b.Field(3).(*array.StringBuilder)
	names.ReserveData(int(n) * 16)
	var name [24]byte
	for i := range n {
		ids.Append(g.next + i)
		prices.Append(g.rng.Float64() * 1000)
		qtys.Append(g.rng.Int32N(10_000))
		if g.rng.IntN(20) == 0 {
			names.AppendNull()
			continue
		}
		l := 8 + g.rng.IntN(17)
		for j := range l {
			name[j] = byte('a' + g.rng.IntN(26))
		}
		names.BinaryBuilder.Append(name[:l])
	}
	g.next += n
	g.cur = b.NewRecordBatch()
	if g.err = g.parquet.WriteBuffered(g.cur); g.err != nil {
		return false
	}
	return true
}

// BenchmarkHandoff: see handoffBytes.
func BenchmarkHandoff(b *testing.B) {
	size := *handoffBytes
	data := benchData.get(b, size)
	key := []byte("fleet key")
	a := serveHandoffWorker(b, &joinedWorker{name: "a", lease: "la", key: key})
	a.held.Register("r1", "parent", data.ipc)
	tkt, err := SignIntermediate(key, IntermediateTicket{Run: "r1", Model: "parent", Worker: "a", Lease: "la",
		Expires: time.Now().Add(24 * time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dst := filepath.Join(filepath.Dir(data.ipc), "child-input.arrow")
	b.Cleanup(func() { os.Remove(dst) })
	// spares, while set, keeps each fetched file when its iteration ends,
	// as a worker does when a run ends, for the next fetch to write over.
	var spares *Spares
	// before and after, while set, run around each iteration, untimed
	// (after instead of keeping or removing the fetched file).
	var before, after func(b *testing.B)

	// took is the wall time of each path, cpu the CPU time of the
	// process (both workers and the reader): on a busy machine the second
	// says what the first would be with the cores to itself.
	took, cpu := map[string]time.Duration{}, map[string]time.Duration{}
	run := func(name string, op func(b *testing.B) int64) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(data.bytes)
			var total, totalCPU time.Duration
			for b.Loop() {
				// Each path starts from a collected heap, so that none pays
				// for the garbage of generating the table or of the path
				// before it.
				b.StopTimer()
				if before != nil {
					before(b)
				}
				runtime.GC()
				debug.FreeOSMemory()
				b.StartTimer()
				start, startCPU := time.Now(), processCPU(b)
				if rows := op(b); rows != data.rows {
					b.Fatalf("%d rows, want %d", rows, data.rows)
				}
				total += time.Since(start)
				totalCPU += processCPU(b) - startCPU
				b.StopTimer()
				if after != nil {
					after(b)
				} else if spares != nil {
					spares.Put(dst)
				} else {
					os.Remove(dst)
				}
				b.StartTimer()
			}
			took[name], cpu[name] = total/time.Duration(b.N), totalCPU/time.Duration(b.N)
			b.ReportMetric(float64(data.bytes)/took[name].Seconds()/1e9, "GB/s")
			b.ReportMetric(cpu[name].Seconds()/(float64(data.bytes)/1e9), "cpu-s/GB")
		})
	}
	// fetch hands the table over as the first fetch of an output does: A
	// maps it for the handoff and unmaps it once forgotten (the output of
	// a parent that one child on another worker reads). "flight-again"
	// keeps A's mapping from one fetch to the next, as for the fetches of
	// a parent's other workers after the first. "flight-spares" writes
	// over the pages of the fetch before (a worker that fetched for a
	// run that ended within flight.SparesTTL); "-reserve" over the pages
	// of a reserve made at start (serve --shm-reserve); the others into
	// new pages.
	// transport is the location's prefix: grpc:// (DoGet) or http:// (the
	// file over HTTP, what a data plane without TLS is asked).
	transport := "grpc://"
	fetch := func(b *testing.B, again bool) {
		if err := FetchIntermediate(ctx, transport+a.addr, tkt, dst, FetchOptions{Spares: spares}); err != nil {
			b.Fatal(err)
		}
		if !again {
			a.held.Forget("r1", "parent")
			a.held.Register("r1", "parent", data.ipc)
		}
	}
	for _, tr := range []struct{ prefix, name string }{{"http://", "http"}, {"grpc://", "flight"}} {
		transport = tr.prefix
		run(tr.name, func(b *testing.B) int64 {
			fetch(b, false)
			return fileRows(b, dst)
		})
		sp, err := NewSpares(filepath.Join(filepath.Dir(data.ipc), "spares"), 4<<30, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		spares = sp
		sp.Put(writeSpare(b, filepath.Dir(data.ipc), int(data.bytes))) // an earlier run's
		run(tr.name+"-spares", func(b *testing.B) int64 {
			fetch(b, false)
			return fileRows(b, dst)
		})
		spares = nil
		sp.Close()
		// A worker started with --shm-reserve: the fetch is its first,
		// into the reserve made at start (twice the table, so that one
		// of its files holds the table; made anew for each fetch).
		before = func(b *testing.B) {
			if spares, err = NewSpares(filepath.Join(filepath.Dir(data.ipc), "reserve"), 0, 0); err != nil {
				b.Fatal(err)
			}
			if err := spares.Reserve(reserveFor(data.bytes), func(err error) { b.Error(err) }); err != nil {
				b.Fatal(err)
			}
			<-spares.Filled()
		}
		after = func(b *testing.B) {
			os.Remove(dst)
			spares.Close()
			spares = nil
		}
		run(tr.name+"-reserve", func(b *testing.B) int64 {
			fetch(b, false)
			return fileRows(b, dst)
		})
		before, after = nil, nil
		run(tr.name+"-again", func(b *testing.B) int64 {
			fetch(b, true)
			return fileRows(b, dst)
		})
		run(tr.name+"+read", func(b *testing.B) int64 {
			fetch(b, false)
			return readIPC(b, dst)
		})
	}
	run("parquet", func(b *testing.B) int64 { return readParquet(b, data.parquet) })

	pq := took["parquet"]
	if pq == 0 {
		return // a -bench pattern left Parquet out
	}
	fmt.Printf("\nhandoff of %.2f GiB of Arrow data (%d rows of %d columns; Parquet %.2f GiB, snappy; generated in %s)\n",
		float64(data.bytes)/(1<<30), data.rows, benchSchema.NumFields(), float64(data.parquetBytes)/(1<<30), data.generatedTook.Round(time.Millisecond))
	fmt.Printf("%-48s %10s %8s %10s %10s %10s\n", "path", "time", "GB/s", "x parquet", "cpu-s/GB", "x parquet")
	for _, r := range []struct{ name, what string }{
		{"http", "worker A -> Flight http: location -> /dev/shm"},
		{"http-spares", "the same, over spare pages (steady worker)"},
		{"http-reserve", "the same, first fetch of a --shm-reserve worker"},
		{"http-again", "the same, A's file sent again (fan-out)"},
		{"http+read", "the same, then read from /dev/shm"},
		{"flight", "worker A -> Flight DoGet -> /dev/shm"},
		{"flight-spares", "the same, over spare pages (steady worker)"},
		{"flight-reserve", "the same, first fetch of a --shm-reserve worker"},
		{"flight-again", "the same, A's mapping kept (fan-out)"},
		{"flight+read", "the same, then read from /dev/shm"},
		{"parquet", "Parquet on local disk (pqarrow)"},
	} {
		d, ok := took[r.name]
		if !ok {
			continue
		}
		fmt.Printf("%-48s %10s %8.2f %10.2f %10.2f %10.2f\n", r.what, d.Round(time.Millisecond),
			float64(data.bytes)/d.Seconds()/1e9, d.Seconds()/pq.Seconds(),
			cpu[r.name].Seconds()/(float64(data.bytes)/1e9), cpu[r.name].Seconds()/cpu["parquet"].Seconds())
	}
	fmt.Println("goal: >= 1.5 GB/s and <= 0.5x the Parquet time")
}

// reserveFor is the reserve of spares in whose files a fetch of n bytes
// finds one that holds it: ReservePiece doubled until it is twice n.
func reserveFor(n int64) int64 {
	r := ReservePiece
	for r < 2*n {
		r *= 2
	}
	return r
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fileRows checks the headers of an IPC file and returns its rows.
func fileRows(b *testing.B, path string) int64 {
	f, err := arrowipc.Open(path, arrowipc.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rows, err := f.Rows(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return rows
}

// readIPC reads every batch of an IPC file (validated, as a pipeline
// reads its inputs) and returns the rows.
func readIPC(b *testing.B, path string) int64 {
	f, err := arrowipc.Open(path, arrowipc.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := f.Reader()
	defer r.Release()
	var rows int64
	for r.Next() {
		rows += r.RecordBatch().NumRows()
	}
	if err := r.Err(); err != nil {
		b.Fatal(err)
	}
	return rows
}

// readParquet reads every row of a Parquet file into Arrow batches, its
// columns in parallel, and returns the rows.
func readParquet(b *testing.B, path string) int64 {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		b.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{Parallel: true, BatchSize: arrowipc.BatchRows}, memory.DefaultAllocator)
	if err != nil {
		b.Fatal(err)
	}
	r, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Release()
	var rows int64
	for r.Next() {
		rows += r.RecordBatch().NumRows()
	}
	if err := r.Err(); err != nil {
		b.Fatal(err)
	}
	return rows
}

// writeSpare writes size bytes into a new file of dir, the spare an
// earlier fetch would have left.
func writeSpare(b *testing.B, dir string, size int) string {
	p := filepath.Join(dir, "earlier.arrow")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for left := size; left > 0; left -= len(chunk) {
		if _, err := f.Write(chunk[:min(left, len(chunk))]); err != nil {
			b.Fatal(err)
		}
	}
	return p
}
