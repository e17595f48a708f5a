package iceberg

import (
	"bytes"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
)

// parquetSeeds are the IPC seeds (every flat type, nested ones) written
// as Parquet with each codec an import may meet.
func parquetSeeds(t testing.TB) [][]byte {
	var out [][]byte
	defer func() {
		if len(out) < 8 {
			t.Fatalf("%d Parquet seeds", len(out))
		}
	}()
	seeds := ipctest.Seeds(t)
	seeds["nested parquet"] = nestedIPC(t)
	for _, name := range []string{"narrow", "wide", "nested parquet"} {
		r, err := ipc.NewFileReader(bytes.NewReader(seeds[name]))
		if err != nil {
			t.Fatal(err)
		}
		for _, codec := range []compress.Compression{compress.Codecs.Uncompressed, compress.Codecs.Snappy, compress.Codecs.Zstd, compress.Codecs.Gzip} {
			var buf bytes.Buffer
			w, err := pqarrow.NewFileWriter(r.Schema(), &buf, parquet.NewWriterProperties(parquet.WithCompression(codec)),
				pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
			if err != nil {
				continue // a type Parquet has no writer for here (DECIMAL32)
			}
			for i := range r.NumRecords() {
				rec, rerr := r.RecordBatch(i)
				if rerr != nil {
					t.Fatal(rerr)
				}
				if err = w.Write(rec); err != nil {
					break
				}
			}
			if cerr := w.Close(); err == nil && cerr == nil {
				out = append(out, buf.Bytes())
			}
		}
		r.Close()
	}
	return out
}

// nestedIPC is an Arrow IPC file of lists, structs and maps that Parquet
// can hold.
func nestedIPC(t testing.TB) []byte {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "pt", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
			arrow.Field{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
		{Name: "attrs", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), Nullable: true},
	}, nil)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(`[
		{"id": 1, "tags": ["a", "b"], "pt": {"x": 1.5, "label": "p"}, "attrs": [{"key": "k", "value": 1}]},
		{"id": 2, "tags": null, "pt": null, "attrs": null},
		{"id": 3, "tags": [], "pt": {"x": null, "label": "q"}, "attrs": []}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzParquetImport imports arbitrary small Parquet files (`table import
// x.parquet`, an upload of one to a server): Import returns a table state
// or an error of a class other than Internal, and never panics or dies of
// what a footer or page header says. As FuzzIPCImport, run it as
//
//	go test ./catalog/iceberg -run '^$' -fuzz FuzzParquetImport -fuzztime 3m -fuzzminimizetime 20x
func FuzzParquetImport(f *testing.F) {
	for _, s := range parquetSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Add([]byte("PAR1PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<15 {
			return
		}
		fuzzImport(t, "in.parquet", data)
	})
}
