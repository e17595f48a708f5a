package iceberg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// ipcSeedFields has a column of each flat type import reads.
var ipcSeedFields = []arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "usd", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "country", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
	{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
	{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "d32", Type: &arrow.Decimal32Type{Precision: 5, Scale: 2}, Nullable: true},
	{Name: "d64", Type: &arrow.Decimal64Type{Precision: 12, Scale: 0}, Nullable: true},
	{Name: "d128", Type: &arrow.Decimal128Type{Precision: 20, Scale: 3}, Nullable: true},
	{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "day64", Type: arrow.FixedWidthTypes.Date64, Nullable: true},
	{Name: "t32", Type: arrow.FixedWidthTypes.Time32ms, Nullable: true},
	{Name: "t64", Type: arrow.FixedWidthTypes.Time64ns, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Second, TimeZone: "Europe/Rome"}, Nullable: true},
	{Name: "tsns", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}, Nullable: true},
	{Name: "big", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	{Name: "view", Type: arrow.BinaryTypes.StringView, Nullable: true},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "lbin", Type: arrow.BinaryTypes.LargeBinary, Nullable: true},
	{Name: "bview", Type: arrow.BinaryTypes.BinaryView, Nullable: true},
	{Name: "fixed", Type: &arrow.FixedSizeBinaryType{ByteWidth: 3}, Nullable: true},
	{Name: "nothing", Type: arrow.Null, Nullable: true},
	{Name: "cat", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}, Nullable: true},
}

// ipcSeedRows are two batches of rows of ipcSeedFields, with nulls.
var ipcSeedRows = []string{
	`[{"id": 1, "usd": 0.25, "country": "IT", "i8": -3, "u32": 7, "u64": 9, "f32": 1.5, "d32": "123.45", "d64": "-42",
	   "d128": "12345678901234567.891", "ok": true, "day": 19000, "day64": 86400000, "t32": 1000, "t64": 5,
	   "ts": 1700000000, "tsns": 1700000000123456789, "big": "large", "view": "a view longer than twelve bytes",
	   "bin": "AAE=", "lbin": "", "bview": "AQID", "fixed": "YWJj", "nothing": null, "cat": "p"},
	  {"id": null, "usd": null, "country": null, "i8": null, "u32": null, "u64": null, "f32": null, "d32": null, "d64": null,
	   "d128": null, "ok": null, "day": null, "day64": null, "t32": null, "t64": null, "ts": null, "tsns": null, "big": null,
	   "view": null, "bin": null, "lbin": null, "bview": null, "fixed": null, "nothing": null, "cat": "q"}]`,
	`[{"id": 3, "usd": -1, "country": "FR", "i8": 127, "u32": 4000000000, "u64": 1, "f32": -0.5, "d32": "-0.01", "d64": "7",
	   "d128": "0.001", "ok": false, "day": -1, "day64": 0, "t32": 0, "t64": 86399999999999, "ts": 0, "tsns": 0,
	   "big": "", "view": "short", "bin": "", "lbin": "AA==", "bview": "", "fixed": "eHl6", "nothing": null, "cat": "p"},
	  {"id": 4, "cat": "q"}]`,
}

// ipcSeed writes ipcSeedFields' columns (the first three only if narrow)
// as an Arrow IPC file with opts (compression).
func ipcSeed(t testing.TB, narrow bool, opts ...ipc.Option) []byte {
	fields := ipcSeedFields
	if narrow {
		fields = fields[:3]
	}
	schema := arrow.NewSchema(fields, nil)
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, append(opts, ipc.WithSchema(schema))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range ipcSeedRows {
		rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(rows))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ipcSeeds are small Arrow IPC files that import: arrow-go's, plain and
// compressed, and pyarrow's (testdata/ipc).
func ipcSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{
		"narrow": ipcSeed(t, true),
		"wide":   ipcSeed(t, false),
		"lz4":    ipcSeed(t, false, ipc.WithLZ4()),
		"zstd":   ipcSeed(t, false, ipc.WithZstd()),
	}
	for _, name := range []string{"pyarrow.arrow", "pyarrow_lz4.feather", "pyarrow_zstd.feather"} {
		b, err := os.ReadFile(filepath.Join("testdata", "ipc", name))
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = b
	}
	return seeds
}

// importIPCBytes imports data as an Arrow IPC file into a new warehouse
// under dir and fails t unless the import succeeds or fails with a
// classified error.
func importIPCBytes(t testing.TB, dir string, data []byte) {
	if err := checkIPCImport(dir, data); err != nil {
		t.Fatal(err)
	}
}

// checkIPCImport imports data as an Arrow IPC file into a new warehouse
// under dir; the import must succeed, releasing all it allocated, or fail
// with a classified error.
func checkIPCImport(dir string, data []byte) error {
	src := filepath.Join(dir, "in.arrow")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return err
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	format, err := New(Options{Warehouse: filepath.Join(dir, "wh"), Allocator: mem})
	if err != nil {
		return err
	}
	out, err := format.Import(context.Background(), catalog.ImportSpec{Ident: salesIdent, Sources: []string{src}})
	if err != nil {
		// arrow-go's reader leaks (to the garbage collector) what it
		// allocated before it panicked on a corrupt buffer, so only an
		// import that succeeds must have released everything.
		if errdefs.Class(err) == errdefs.ErrInternal {
			return fmt.Errorf("unclassed error for %q: %w", data, err)
		}
		return nil
	}
	if out.Entry.MetadataLocation == "" {
		return fmt.Errorf("outcome %+v", out)
	}
	if _, err := format.Describe(context.Background(), salesIdent, out.Entry); err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	if n := mem.CurrentAlloc(); n != 0 {
		return fmt.Errorf("%d bytes still allocated after importing %q", n, data)
	}
	return nil
}

// FuzzIPCImport imports arbitrary small Arrow IPC files (the format of
// pipeline outputs, and of `table import x.arrow`): Import returns a table
// state or an error of a class other than Internal, and never panics.
// An import takes milliseconds, so the fuzzer's default minute of
// minimizing each new input looks like a stall; run it as
//
//	go test ./catalog/iceberg -run '^$' -fuzz FuzzIPCImport -fuzztime 3m -fuzzminimizetime 20x
func FuzzIPCImport(f *testing.F) {
	for _, seed := range ipcSeeds(f) {
		f.Add(seed)
		f.Add(seed[:len(seed)/2])
		f.Add(seed[:len(seed)-7])
	}
	f.Add([]byte("ARROW1\x00\x00ARROW1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		dir, err := os.MkdirTemp("", "fuzzipc")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		importIPCBytes(t, dir, data)
	})
}
