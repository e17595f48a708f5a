package iceberg

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehouse-dev/lakehouse/catalog"
)

const benchRows = 10_000_000

// benchParquet returns a 10M-row Parquet file (int64 id, float64 amount,
// string country from a small set, date32 day), generated once and cached
// under os.TempDir()/lakehouse-bench.
func benchParquet(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "lakehouse-bench")
	path := filepath.Join(dir, "sales-10m.parquet")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	tmp, err := os.CreateTemp(dir, "sales-*.tmp")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(tmp.Name())
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(b, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64},
		{Name: "country", Type: arrow.BinaryTypes.String},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32},
	}, nil)
	w, err := pqarrow.NewFileWriter(sc, tmp,
		parquet.NewWriterProperties(parquet.WithAllocator(mem), parquet.WithCompression(compress.Codecs.Snappy),
			parquet.WithMaxRowGroupLength(1<<20)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem)))
	if err != nil {
		b.Fatal(err)
	}
	countries := []string{"DE", "FR", "IT", "ES", "NL", "PL", "SE", "US"}
	day0 := arrow.Date32FromTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	bld := array.NewRecordBuilder(mem, sc)
	defer bld.Release()
	const batch = 1 << 16
	for start := 0; start < benchRows; start += batch {
		n := min(batch, benchRows-start)
		for i := start; i < start+n; i++ {
			bld.Field(0).(*array.Int64Builder).Append(int64(i))
			bld.Field(1).(*array.Float64Builder).Append(float64(i%100_000) / 100)
			bld.Field(2).(*array.StringBuilder).Append(countries[i%len(countries)])
			bld.Field(3).(*array.Date32Builder).Append(day0 + arrow.Date32(i%366))
		}
		rec := bld.NewRecordBatch()
		err := w.WriteBuffered(rec)
		rec.Release()
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkImportParquet10M imports a 10M-row Parquet file into a fresh
// table and, for comparison, copies the same file with io.Copy (no fsync).
// It reports both times and their ratio; the import should cost about a
// copy (the fast path copies the bytes and reads only the footer).
func BenchmarkImportParquet10M(b *testing.B) {
	src := benchParquet(b)
	info, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var importTime, cpTime time.Duration
	b.SetBytes(info.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir, err := os.MkdirTemp("", "lakehouse-bench-run")
		if err != nil {
			b.Fatal(err)
		}
		f, err := New(Options{Warehouse: filepath.Join(dir, "wh")})
		if err != nil {
			b.Fatal(err)
		}

		start := time.Now()
		if err := copyPlain(src, filepath.Join(dir, "copy.parquet")); err != nil {
			b.Fatal(err)
		}
		cpTime += time.Since(start)

		b.StartTimer()
		start = time.Now()
		out, err := f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Sources: []string{src}})
		if err != nil {
			b.Fatal(err)
		}
		importTime += time.Since(start)
		b.StopTimer()
		if out.Rows != benchRows {
			b.Fatalf("imported %d rows", out.Rows)
		}
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(importTime.Seconds()/n, "import-s")
	b.ReportMetric(cpTime.Seconds()/n, "cp-s")
	b.ReportMetric(importTime.Seconds()/cpTime.Seconds(), "ratio")
	b.ReportMetric(float64(info.Size())/(1<<20), "file-MiB")
}

// BenchmarkImportParquet10MPartitioned imports the same file into a table
// partitioned by identity(country): no fast path, every row streams through
// iceberg-go's writer. It shows what the fast path saves.
func BenchmarkImportParquet10MPartitioned(b *testing.B) {
	src := benchParquet(b)
	info, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(info.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir, err := os.MkdirTemp("", "lakehouse-bench-run")
		if err != nil {
			b.Fatal(err)
		}
		f, err := New(Options{Warehouse: filepath.Join(dir, "wh")})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		out, err := f.Import(context.Background(), catalog.ImportSpec{Ident: salesIdent, Sources: []string{src},
			PartitionBy: []string{"country"}})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if out.Rows != benchRows {
			b.Fatalf("imported %d rows", out.Rows)
		}
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

func copyPlain(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
