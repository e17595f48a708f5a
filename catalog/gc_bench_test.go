package catalog_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// BenchmarkGC100kUnreachable collects a warehouse of 100,000 unreachable
// files (1,000 folders of 100, as killed imports leave them) beside ten
// live table states: the time of one collection, and the peak heap in use
// while it runs (sampled every 5 ms) as peak-heap-MiB.
//
//	go test -tags duckdb_arrow ./catalog -run '^$' -bench GC100k -benchmem -benchtime 3x
func BenchmarkGC100kUnreachable(b *testing.B) {
	const dirs, perDir = 1000, 100
	e := newGCEnv(b)
	for i := range 10 {
		if _, err := e.importRows("dev", fmt.Sprintf("t%d", i), i*100, 100, ""); err != nil {
			b.Fatal(err)
		}
	}
	later := func() time.Time { return time.Now().Add(48 * time.Hour) }
	wh := filepath.Join(e.dir, "wh")
	var peak uint64
	for b.Loop() {
		b.StopTimer()
		for d := range dirs {
			dir := filepath.Join(wh, "sales", fmt.Sprintf("killed-%04d", d), "data")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			for f := range perDir {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.parquet", f)), []byte("x"), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		var maxInUse atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > maxInUse.Load() {
					maxInUse.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		b.StartTimer()
		res, err := e.svc.GC(e.ctx, catalog.GCOptions{Objects: e.format.Objects(), Tables: e.format, Now: later})
		b.StopTimer()
		close(stop)
		<-sampled
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Deleted) != dirs*perDir {
			b.Fatalf("deleted %d files, want %d", len(res.Deleted), dirs*perDir)
		}
		if m := maxInUse.Load(); m > base {
			peak = max(peak, m-base)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
