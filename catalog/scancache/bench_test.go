package scancache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache/internal/pqtest"
)

// wideColumns is the column count of writeWideParquet's files.
const wideColumns = 20

// writeWideParquet writes a 20-column file (int64, float64, string and
// decimal columns in turn) of rows rows, rowGroup rows per row group,
// Snappy-compressed.
func writeWideParquet(tb testing.TB, path string, rows, rowGroup int) int64 {
	tb.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(tb, 0)
	fields := make([]arrow.Field, wideColumns)
	for i := range fields {
		typ := []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64, arrow.BinaryTypes.String,
			&arrow.Decimal128Type{Precision: 18, Scale: 4}}[i%4]
		fields[i] = arrow.Field{Name: fmt.Sprintf("c%02d", i), Type: typ, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	out, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	props := parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(int64(rowGroup)),
		parquet.WithCompression(compress.Codecs.Snappy))
	w, err := pqarrow.NewFileWriter(schema, out, props, pqarrow.DefaultWriterProps())
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(42, 42))
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for start := 0; start < rows; start += rowGroup {
		for i := start; i < min(rows, start+rowGroup); i++ {
			for c := range wideColumns {
				switch fb := b.Field(c).(type) {
				case *array.Int64Builder:
					fb.Append(rng.Int64N(1 << 40))
				case *array.Float64Builder:
					fb.Append(rng.Float64())
				case *array.StringBuilder:
					fb.Append(fmt.Sprintf("v%d-%d", c, rng.IntN(50_000)))
				case *array.Decimal128Builder:
					fb.Append(decimal128.FromI64(rng.Int64N(1_000_000_000)))
				}
			}
		}
		rec := b.NewRecordBatch()
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

var (
	wideOnce sync.Once
	widePath string
	wideSize int64
	wideDir  string
)

// wideFile is one shared 1M-row file for the benchmarks.
func wideFile(b *testing.B) (dir, key string, size int64) {
	wideOnce.Do(func() {
		d, err := os.MkdirTemp("", "scancache-bench-")
		if err != nil {
			b.Fatal(err)
		}
		wideDir, widePath = d, filepath.Join(d, "wide.parquet")
		wideSize = writeWideParquet(b, widePath, 1_000_000, 128*1024)
	})
	return wideDir, "wide.parquet", wideSize
}

// BenchmarkDifferential: a query adding one column (c02, a string) to a
// cached set of two (c00, c01) fetches about that column's compressed
// size (goal ≤ 1.05x), against fetching the whole file.
func BenchmarkDifferential(b *testing.B) {
	dir, key, size := wideFile(b)
	added := pqtest.ColumnBytes(b, filepath.Join(dir, key), "c02")
	src := &dirSource{dir: dir}
	ctx := context.Background()
	// Without the differential cache, the 3-column query fetches all of
	// its columns again.
	cold := openCache(b, 0)
	_, all3, err := cold.Materialize(ctx, src, key, []string{"c00", "c01", "c02"})
	if err != nil {
		b.Fatal(err)
	}
	var first, second FetchStats
	for b.Loop() {
		c, err := Open(b.TempDir(), 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, first, err = c.Materialize(ctx, src, key, []string{"c00", "c01"}); err != nil {
			b.Fatal(err)
		}
		if _, second, err = c.Materialize(ctx, src, key, []string{"c00", "c01", "c02"}); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(second.BytesFetched), "added-B")
	b.ReportMetric(float64(second.BytesFetched)/float64(added), "x-column")
	b.ReportMetric(float64(second.BytesFetched)/float64(size), "x-file")
	b.ReportMetric(float64(second.BytesFetched)/float64(all3.BytesFetched), "x-refetch")
	b.Logf("file %d bytes, %d columns; first query (2 columns) fetched %d bytes in %d requests (%.3fx the file)",
		size, wideColumns, first.BytesFetched, first.Requests, float64(first.BytesFetched)/float64(size))
	b.Logf("adding c02 fetched %d bytes in %d requests; its chunks are %d bytes: %.4fx the column, %.4fx whole-file fetching",
		second.BytesFetched, second.Requests, added, float64(second.BytesFetched)/float64(added), float64(second.BytesFetched)/float64(size))
	b.Logf("without the differential cache the 3-column query fetches %d bytes (%.3fx)",
		all3.BytesFetched, float64(second.BytesFetched)/float64(all3.BytesFetched))
}

// BenchmarkWarm: a Materialize whose ranges are all cached, for 5 of the
// 20 columns: "stamped" trusts a data file unchanged since its last full
// verification; "verifying" reads and checksums every cached range (the
// first use after the file changed).
func BenchmarkWarm(b *testing.B) {
	dir, key, _ := wideFile(b)
	src := &dirSource{dir: dir}
	c, err := Open(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cols := []string{"c00", "c01", "c02", "c03", "c04"}
	ctx := context.Background()
	local, st, err := c.Materialize(ctx, src, key, cols)
	if err != nil {
		b.Fatal(err)
	}
	c.Release(local)
	for _, stamped := range []bool{true, false} {
		name := map[bool]string{true: "stamped", false: "verifying"}[stamped]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(st.BytesFetched)
			if stamped {
				time.Sleep(stampSettle + 50*time.Millisecond)
			}
			for b.Loop() {
				if !stamped {
					b.StopTimer()
					now := time.Now() // a recent write: verify
					os.Chtimes(local, now, now)
					b.StartTimer()
				}
				local, st, err := c.Materialize(ctx, src, key, cols)
				if err != nil || !st.Hit {
					b.Fatal(err, st)
				}
				c.Release(local)
			}
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if wideDir != "" {
		os.RemoveAll(wideDir)
	}
	os.Exit(code)
}
