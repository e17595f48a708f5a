package flight_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// The benchmarks compare the same work through a server on loopback (a
// client already connected) and in process, in one run:
//
//	go test -tags=duckdb_arrow -run '^$' -bench . -benchtime 2s ./flight
//
// Latencies are reported as p50/p95/p99 in milliseconds, throughput as
// commits/s, and how many commits shared one sync of the catalog file
// (commits/sync). The catalog is bbolt with fsync on, as `lakehouse serve` opens
// it.

// benchEnv is a catalog over bbolt and Iceberg in a temporary folder,
// served on 127.0.0.1 by a Server, with a client connected to it.
type benchEnv struct {
	store  *bolt.Store
	local  *catalog.Local
	format *iceberg.Format
	addr   string
	client *flight.Client
}

func newBenchEnv(tb testing.TB) *benchEnv {
	tb.Helper()
	dir := tb.TempDir()
	store, err := bolt.Open(filepath.Join(dir, "catalog.db"), bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	format, err := iceberg.New(iceberg.Options{Warehouse: filepath.Join(dir, "warehouse")})
	if err != nil {
		tb.Fatal(err)
	}
	local, err := catalog.NewLocal(context.Background(), store, format, catalog.LocalOptions{Author: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := flight.NewServer(flight.Options{Catalog: local, Queries: &inProcess{svc: local, scans: format}})
	go srv.Serve(lis)
	env := &benchEnv{store: store, local: local, format: format, addr: lis.Addr().String()}
	env.client = env.dial(tb)
	tb.Cleanup(func() {
		srv.GracefulStop(5 * time.Second)
		local.Close()
	})
	return env
}

// dial connects a new client (its own connection) and makes one call so
// the connection is up before timing starts.
func (e *benchEnv) dial(tb testing.TB) *flight.Client {
	tb.Helper()
	c, err := flight.Dial(e.addr, flight.DialOptions{Author: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if _, err := c.ServerInfo(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return c
}

// inProcess runs the server's queries with query.Run, as `lakehouse
// serve` does.
type inProcess struct {
	svc   catalog.Service
	scans catalog.TableScanner
}

func (q *inProcess) Run(ctx context.Context, c flight.QueryCommand) (array.RecordReader, func() error, error) {
	req := query.Request{SQL: c.SQL, Ref: catalog.Ref{Name: string(catalog.MainBranch)}, Namespace: catalog.DefaultNamespace}
	res, err := query.Run(ctx, q.svc, q.scans, req)
	if err != nil {
		return nil, nil, err
	}
	return res.Reader, res.Close, nil
}

func (q *inProcess) Explain(ctx context.Context, c flight.QueryCommand) (*flight.ExplainResult, error) {
	return nil, errdefs.New(errdefs.ErrFailedPrecondition, "the benchmark server explains nothing")
}

// latencies collects the duration of each operation of a benchmark.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) time(fn func() error) error {
	start := time.Now()
	err := fn()
	took := time.Since(start)
	l.mu.Lock()
	l.d = append(l.d, took)
	l.mu.Unlock()
	return err
}

// report adds p50, p95 and p99 in milliseconds to the benchmark's line.
func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	at := func(p float64) float64 {
		i := min(int(p*float64(len(l.d))), len(l.d)-1)
		return float64(l.d[i].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.95), "p95-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// drain reads a query's rows to the end and returns how many there were.
func drain(r array.RecordReader) (int64, error) {
	var n int64
	for r.Next() {
		n += r.RecordBatch().NumRows()
	}
	return n, r.Err()
}

// BenchmarkTinyQuery is `SELECT 1` end to end: through the server with the
// client connected (GetFlightInfo plans and starts it, DoGet streams the
// row), and in process with query.Run. Goal: served p50 ≤ 10 ms. Opening
// a DuckDB is ~7 ms of CPU, most of a tiny query's; runtime/query runs a
// query in the DuckDB the last query over the same views and files left
// (runtime/duckdb.Pool.Put), so from the second `SELECT 1` on none opens.
//
// The -paced variants leave tinyQueryPause between queries (untimed), as
// a person or a dashboard does.
func BenchmarkTinyQuery(b *testing.B) {
	env := newBenchEnv(b)
	for _, pause := range []time.Duration{0, tinyQueryPause} {
		name := ""
		if pause > 0 {
			name = "-paced"
		}
		b.Run("served"+name, func(b *testing.B) { tinyServed(b, env, pause) })
		b.Run("embedded"+name, func(b *testing.B) { tinyEmbedded(b, env, pause) })
	}
}

// tinyQueryPause is the pause between the queries of the -paced variants.
const tinyQueryPause = 30 * time.Millisecond

func tinyServed(b *testing.B, env *benchEnv, pause time.Duration) {
	tinyLoop(b, pause, func(ctx context.Context) (array.RecordReader, func(), error) {
		r, err := env.client.Query(ctx, flight.QueryCommand{SQL: "SELECT 1"})
		if err != nil {
			return nil, nil, err
		}
		return r, r.Release, nil
	})
}

func tinyEmbedded(b *testing.B, env *benchEnv, pause time.Duration) {
	req := query.Request{SQL: "SELECT 1", Ref: catalog.Ref{Name: string(catalog.MainBranch)}, Namespace: catalog.DefaultNamespace}
	tinyLoop(b, pause, func(ctx context.Context) (array.RecordReader, func(), error) {
		res, err := query.Run(ctx, env.local, env.format, req)
		if err != nil {
			return nil, nil, err
		}
		return res.Reader, func() { res.Close() }, nil
	})
}

// tinyLoop times run (a SELECT 1 and its release), pausing between runs.
func tinyLoop(b *testing.B, pause time.Duration, run func(context.Context) (array.RecordReader, func(), error)) {
	ctx := context.Background()
	var lat latencies
	for b.Loop() {
		time.Sleep(pause)
		err := lat.time(func() error {
			r, release, err := run(ctx)
			if err != nil {
				return err
			}
			defer release()
			n, err := drain(r)
			if err == nil && n != 1 {
				err = fmt.Errorf("%d rows, want 1", n)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	lat.report(b)
}

// tableChange is a commit's change: table t of the default namespace at
// its n-th state. The metadata file is never read by a commit.
func tableChange(t string, n int) catalog.Changes {
	id := catalog.TableIdent{Namespace: catalog.DefaultNamespace, Name: t}
	return catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{id: {
		MetadataLocation: fmt.Sprintf("warehouse/default/%s/metadata/%08d.metadata.json", t, n),
		TableUUID:        "5f3c1b0e-9d7a-4c61-8f0e-2b1d3c4e5f60",
		SnapshotID:       int64(n) + 1,
	}}}
}

// BenchmarkCatalogOps times one branch create and one commit (CommitTables
// of one table) at a time, through the server and in process.
func BenchmarkCatalogOps(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	sides := []struct {
		name string
		svc  catalog.Service
	}{{"served", env.client}, {"local", env.local}}
	for _, side := range sides {
		b.Run("branch-create/"+side.name, func(b *testing.B) {
			var lat latencies
			i := 0
			for b.Loop() {
				i++
				name := catalog.BranchName(fmt.Sprintf("bench.%s-%d", side.name, i))
				if err := lat.time(func() error {
					_, err := side.svc.CreateBranch(ctx, name, catalog.Ref{Name: string(catalog.MainBranch)})
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			lat.report(b)
		})
		b.Run("commit/"+side.name, func(b *testing.B) {
			branch := catalog.BranchName("bench.commit-" + side.name)
			if _, err := side.svc.CreateBranch(ctx, branch, catalog.Ref{Name: string(catalog.MainBranch)}); err != nil {
				b.Fatal(err)
			}
			var lat latencies
			i := 0
			for b.Loop() {
				i++
				if err := lat.time(func() error {
					_, err := side.svc.CommitTables(ctx, branch, "", tableChange("t", i), catalog.CommitOptions{})
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			lat.report(b)
		})
	}
}

// cpuTime is the CPU time this process has used (clients and server
// together): per commit it does not depend on how busy the machine is.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rounds numbers the rounds of BenchmarkCommits8, whose branches are new
// in each.
var rounds atomic.Int64

// BenchmarkCommits8 is 8 clients committing at once, each to a table of its
// own on a branch of its own: through the server (8 connections) and in
// process on one catalog.Local. Goal: served ≥ 2,000 commits/s.
func BenchmarkCommits8(b *testing.B) {
	const writers = 8
	env := newBenchEnv(b)
	ctx := context.Background()
	sides := []struct {
		name string
		svc  func(b *testing.B) catalog.Service
	}{
		{"served", func(b *testing.B) catalog.Service { return env.dial(b) }},
		{"local", func(*testing.B) catalog.Service { return env.local }},
	}
	for _, side := range sides {
		b.Run(side.name, func(b *testing.B) {
			round := rounds.Add(1)
			svcs := make([]catalog.Service, writers)
			branches := make([]catalog.BranchName, writers)
			for w := range writers {
				svcs[w] = side.svc(b)
				branches[w] = catalog.BranchName(fmt.Sprintf("bench.%s-w%d-%d", side.name, w, round))
				if _, err := env.local.CreateBranch(ctx, branches[w], catalog.Ref{Name: string(catalog.MainBranch)}); err != nil {
					b.Fatal(err)
				}
			}
			before := env.store.CommitStats()
			cpu := cpuTime()
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					table := fmt.Sprintf("w%d", w)
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := svcs[w].CommitTables(ctx, branches[w], "", tableChange(table, int(i)), catalog.CommitOptions{}); err != nil {
							failed.Store(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/commit")
			after := env.store.CommitStats()
			b.ReportMetric(float64(after.Updates-before.Updates)/float64(max(1, after.Batches-before.Batches)), "commits/sync")
		})
	}
}

// streamRows is the size of BenchmarkStream's result: 10M rows of four
// BIGINTs, 320 MB.
const streamRows = 10_000_000

// streamSQL is the 4-column result of BenchmarkStream (and of
// bench/client_stream.py).
var streamSQL = fmt.Sprintf("SELECT range AS a, range*2 AS b, range*3 AS c, range*4 AS d FROM range(%d)", streamRows)

// BenchmarkStream reads a 10M-row, 4-column result to its end: through
// the server to a Go client on loopback, and in process straight from
// query.Run in the server's 256K-row batches (the rate DuckDB produces
// the rows at: the ceiling of the served figure). MB/s counts the Arrow
// buffers' bytes; cpu-ms/op is the process's CPU (server and client
// together when served).
func BenchmarkStream(b *testing.B) {
	env := newBenchEnv(b)
	sides := []struct {
		name string
		run  func(ctx context.Context) (array.RecordReader, func(), error)
	}{
		{"served", func(ctx context.Context) (array.RecordReader, func(), error) {
			r, err := env.client.Query(ctx, flight.QueryCommand{SQL: streamSQL})
			if err != nil {
				return nil, nil, err
			}
			return r, r.Release, nil
		}},
		{"embedded", func(ctx context.Context) (array.RecordReader, func(), error) {
			req := query.Request{SQL: streamSQL, Ref: catalog.Ref{Name: string(catalog.MainBranch)}, Namespace: catalog.DefaultNamespace}
			res, err := query.Run(ctx, env.local, env.format, req)
			if err != nil {
				return nil, nil, err
			}
			// In the batches the server sends (flight/server_query.go).
			if c, ok := res.Reader.(interface {
				CombineWithin(rows int, wait time.Duration)
			}); ok {
				c.CombineWithin(256<<10, 100*time.Millisecond)
			}
			return res.Reader, func() { res.Close() }, nil
		}},
	}
	for _, side := range sides {
		b.Run(side.name, func(b *testing.B) {
			b.SetBytes(streamRows * 32)
			cpu := cpuTime()
			for b.Loop() {
				r, release, err := side.run(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				n, err := drain(r)
				release()
				if err != nil {
					b.Fatal(err)
				}
				if n != streamRows {
					b.Fatalf("%d rows, want %d", n, streamRows)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}
