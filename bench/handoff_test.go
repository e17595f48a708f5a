package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// bigRows makes the benchmark table 1.02 GB in Arrow (32 B a row).
	bigRows = 32_000_000
	// smallRows makes TestHandoffSmall's table ~10 MB.
	smallRows = 320_000
	// handoffReps is the children per mechanism in BenchmarkHandoff1GB.
	handoffReps = 5
	// fanOut is the children holding the table at once in BenchmarkFanOutPSS.
	fanOut = 10
	// goalFanOutBytes is the most the fanOut IPC children may use together.
	goalFanOutBytes = 1.3e9
)

func TestMain(m *testing.M) {
	if err := sweepStale(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: removing folders of dead bench processes:", err)
	}
	// On ^C or SIGTERM remove the datasets; the children get SIGKILL from
	// the kernel (Pdeathsig) when this process exits.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		err := removeAll()
		fmt.Fprintf(os.Stderr, "bench: %v: removed the datasets (%v)\n", s, err)
		os.Exit(1)
	}()
	code := m.Run()
	if err := removeAll(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: removing the datasets:", err)
		code = 1
	}
	os.Exit(code)
}

// big is the 1 GB dataset, written once per process and shared by the
// benchmarks; TestMain removes it.
var big struct {
	once sync.Once
	d    *Dataset
	err  error
}

func bigDataset(b *testing.B) *Dataset {
	big.once.Do(func() {
		start := time.Now()
		big.d, big.err = NewDataset("1gb", bigRows)
		if big.err == nil {
			fmt.Printf("generated %s: %s IPC file %s, %s Parquet file %s, in %s\n",
				fmtBytes(big.d.ArrowBytes), fmtBytes(big.d.IPCSize), big.d.IPCPath,
				fmtBytes(big.d.ParquetSize), big.d.ParquetPath, time.Since(start).Round(time.Millisecond))
		}
	})
	if big.err != nil {
		b.Fatal(big.err)
	}
	return big.d
}

func python(tb testing.TB) string {
	tb.Helper()
	p, err := FindPython()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func BenchmarkHandoff1GB(b *testing.B) {
	benchBig(b, func(ctx context.Context, py string, d *Dataset) (Handoff, error) {
		return MeasureHandoff(ctx, py, d, handoffReps)
	}, func(h Handoff, d *Dataset) {
		fmt.Print("\n", h.Table(d), "\n")
		read := func(l Load) float64 { return l.ReadSeconds }
		b.ReportMetric(h.ReadRatio(), "x-faster-read")
		b.ReportMetric(median(h.IPC, read)*1e3, "ms-ipc-read")
		b.ReportMetric(median(h.Parquet, read)*1e3, "ms-parquet-read")
	})
}

func BenchmarkFanOutPSS(b *testing.B) {
	benchBig(b, func(ctx context.Context, py string, d *Dataset) (FanOut, error) {
		return MeasureFanOut(ctx, py, d, fanOut)
	}, func(f FanOut, d *Dataset) {
		_, ipc, pq, _ := f.Totals()
		t := f.Table(d)
		goal := "met"
		if ipc.Total > goalFanOutBytes {
			goal = "NOT met"
		}
		t.Notes = append(t.Notes, fmt.Sprintf("goal: ours <= %s in total for %d children: %s", fmtBytes(goalFanOutBytes), fanOut, goal))
		fmt.Print("\n", t, "\n")
		b.ReportMetric(float64(ipc.Total)/1e9, "GB-ipc-pss")
		b.ReportMetric(float64(pq.Total)/1e9, "GB-parquet-pss")
		b.ReportMetric(float64(pq.Total)/float64(ipc.Total), "x-less-memory")
	})
}

// benchBig runs measure b.N times on the 1 GB dataset and reports the last
// result. If it does not finish (a panic skips TestMain), it removes every
// dataset on the way out.
func benchBig[R any](b *testing.B, measure func(ctx context.Context, py string, d *Dataset) (R, error), report func(R, *Dataset)) {
	done := false
	defer func() {
		if !done {
			_ = removeAll()
		}
	}()
	py := python(b)
	d := bigDataset(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ResetTimer()
	var r R
	for range b.N {
		var err error
		if r, err = measure(ctx, py, d); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	report(r, d)
	done = true
}

// TestHandoffSmall runs both measurements on a ~10 MB table: every child
// checks the row count and column sums (in runGroup), the mapped read
// allocates nothing, the children share one copy of the mapped file, and
// nothing is left in /dev/shm or running afterwards.
func TestHandoffSmall(t *testing.T) {
	py := python(t)
	d, err := NewDataset("small", smallRows)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Remove() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	h, err := MeasureHandoff(ctx, py, d, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + h.Table(d).String())
	if got := h.IPC[0].Allocated; got > 64<<10 {
		t.Errorf("the mapped read allocated %d bytes in the child, want ~0 (zero copy)", got)
	}
	if got := h.Parquet[0].Allocated; got < d.ArrowBytes {
		t.Errorf("the Parquet read holds %d bytes, want >= %d: is the baseline reading the table?", got, d.ArrowBytes)
	}

	f, err := MeasureFanOut(ctx, py, d, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + f.Table(d).String())
	_, ipc, _, scaled := f.Totals()
	// Each child touched every page of the file: together they hold it
	// once (a little less or more for pages of the file's footer and page
	// rounding), not twice.
	if ipc.Shmem < d.IPCSize*9/10 || ipc.Shmem > d.IPCSize*11/10+1<<20 {
		t.Errorf("2 children mapping a %d-byte file have Pss_Shmem %d in total, want about one copy", d.IPCSize, ipc.Shmem)
	}
	if scaled || len(f.Parquet) != 2 {
		t.Errorf("ran %d Parquet children, want 2", len(f.Parquet))
	}

	pids := []int{}
	for _, l := range append(h.IPC, h.Parquet...) {
		pids = append(pids, l.PID)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	gone := []string{filepath.Dir(d.IPCPath), filepath.Dir(d.ParquetPath)}
	live.Lock()
	if len(live.sets) == 0 {
		gone = append(gone, shmRoot(), diskRoot())
	}
	live.Unlock()
	for _, dir := range gone {
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there after Remove (%v)", dir, err)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child %d still exists (kill 0: %v)", pid, err)
		}
	}
}
