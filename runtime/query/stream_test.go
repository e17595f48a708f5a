package query_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// countingWriter counts bytes and drops them.
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n.Add(int64(len(p))); return len(p), nil }

// rssBytes is the resident set size of the process.
func rssBytes(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n * 1024
		}
	}
	return 0
}

// resetPeakRSS resets VmHWM (Linux: 5 > /proc/self/clear_refs).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// testStreaming writes SELECT * of a rows-row table as CSV and as Parquet
// and checks that the process's peak RSS and Go heap grow by far less
// than the result's size: rows stream from DuckDB to the writer.
func testStreaming(t *testing.T, rows int) {
	dir := t.TempDir()
	start := time.Now()
	svc, _ := bigTable(t, dir, rows)
	t.Logf("generated and imported %d rows in %s", rows, time.Since(start).Round(time.Millisecond))
	for _, format := range []string{query.FormatCSV, query.FormatParquet} {
		runtime.GC()
		resetPeakRSS()
		base := rssBytes("VmRSS")
		var peakHeap atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peakHeap.Load() {
					peakHeap.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		t0 := time.Now()
		res, err := query.Run(context.Background(), svc, scans, query.Request{SQL: "SELECT * FROM bench.lineitem", Ref: catalog.Ref{Name: "main"}})
		if err != nil {
			t.Fatal(err)
		}
		var w countingWriter
		st, err := query.Write(&w, res.Reader, format, -1)
		res.Close()
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if st.Rows != int64(rows) {
			t.Fatalf("%s: %d rows, want %d", format, st.Rows, rows)
		}
		growth := rssBytes("VmHWM") - base
		// The result as CSV is the measure of its size (Parquet output is
		// compressed, so compare with the uncompressed Arrow size: about
		// as large as the CSV here).
		size := int64(rows) * 70
		t.Logf("%s: %d rows, %d MB written in %s; peak RSS growth %d MB, peak Go heap %d MB (result ≈ %d MB)",
			format, st.Rows, w.n.Load()>>20, time.Since(t0).Round(time.Millisecond), growth>>20, peakHeap.Load()>>20, size>>20)
		if limit := max(size/4, 160<<20); growth > limit {
			t.Errorf("%s: peak RSS grew by %d MB, more than %d MB: the result is not streaming", format, growth>>20, limit>>20)
		}
		if heap := int64(peakHeap.Load()); heap > max(size/8, 96<<20) {
			t.Errorf("%s: Go heap peaked at %d MB", format, heap>>20)
		}
	}
}
