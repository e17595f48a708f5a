// Package ipctest holds Arrow IPC files for the tests of the packages that
// read them: small valid files of every type, to read as they are or to
// corrupt.
package ipctest

import (
	"bytes"
	"embed"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// seedFields has a column of each flat type.
var seedFields = []arrow.Field{
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

// seedRows are two batches of rows of seedFields, with nulls.
var seedRows = []string{
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

// seed writes seedFields' columns (the first three only if narrow) as an
// Arrow IPC file with opts (compression).
func seed(t testing.TB, narrow bool, opts ...ipc.Option) []byte {
	fields := seedFields
	if narrow {
		fields = fields[:3]
	}
	return write(t, arrow.NewSchema(fields, nil), seedRows, opts...)
}

// nestedRows are a batch of rows of nestedFields.
var nestedRows = `[{"id": 1, "tags": ["a", "b"], "pt": {"x": 1.5, "label": "p"}, "attrs": [{"key": "k", "value": 1}], "pair": [1, 2],
	  "big": [[1], null]},
	 {"id": 2, "tags": null, "pt": null, "attrs": null, "pair": null, "big": null},
	 {"id": 3, "tags": [], "pt": {"x": null, "label": null}, "attrs": [], "pair": [null, 4], "big": [[]]}]`

// nestedFields has a column of each nested type that pandas and polars
// frames carry: lists, structs, maps and fixed-size lists.
var nestedFields = []arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	{Name: "pt", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		arrow.Field{Name: "label", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	{Name: "attrs", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32), Nullable: true},
	{Name: "pair", Type: arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Int16), Nullable: true},
	{Name: "big", Type: arrow.LargeListOf(arrow.ListOf(arrow.PrimitiveTypes.Int8)), Nullable: true},
}

// Seeds returns small valid Arrow IPC files: of each flat type, plain
// ("wide") and compressed ("lz4", "zstd"), of three columns ("narrow"),
// of nested types ("nested"), and the files pyarrow wrote (Pyarrow).
func Seeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{
		"narrow": seed(t, true),
		"wide":   seed(t, false),
		"lz4":    seed(t, false, ipc.WithLZ4()),
		"zstd":   seed(t, false, ipc.WithZstd()),
		"nested": write(t, arrow.NewSchema(nestedFields, nil), []string{nestedRows}),
	}
	for _, name := range PyarrowFiles {
		seeds[name] = Pyarrow(t, name)
	}
	return seeds
}

// AddSeeds adds to a fuzz target's corpus every seed, its first half and
// all but its last bytes (truncated files), an empty file and one of the
// magic bytes alone.
func AddSeeds(f *testing.F) {
	for _, seed := range Seeds(f) {
		f.Add(seed)
		f.Add(seed[:len(seed)/2])
		f.Add(seed[:len(seed)-7])
	}
	f.Add([]byte("ARROW1\x00\x00ARROW1"))
	f.Add([]byte{})
}

// write writes batches of rows (JSON) as an Arrow IPC file.
func write(t testing.TB, schema *arrow.Schema, batches []string, opts ...ipc.Option) []byte {
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, append(opts, ipc.WithSchema(schema))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range batches {
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

// PyarrowFiles are the files pyarrow 26 wrote (testdata, made by the
// script below): one batch of two rows and one of two, uncompressed with
// pa.ipc.new_file and as lz4 and zstd compressed Feather, with the types
// pandas frames carry.
//
//	t = pa.table({
//	    "id": pa.array([1, 2, None, 4], pa.int64()),
//	    "usd": pa.array([1.5, None, 3.25, 4.0], pa.float64()),
//	    "name": pa.array(["ann", None, "carl", "dora"], pa.string()),
//	    "country": pa.array(["IT", "FR", None, "IT"]).dictionary_encode(),
//	    "paid": pa.array([True, None, False, True]),
//	    "at": pa.array([datetime.datetime(2024, 3, 1, 10, 0, 0, 123456), None, datetime.datetime(2024, 3, 2),
//	                    datetime.datetime(2024, 3, 3)], pa.timestamp("ns", tz="Europe/Rome")),
//	    "day": pa.array([datetime.date(2024, 1, 1), None, datetime.date(2024, 1, 3), datetime.date(2024, 1, 4)], pa.date32()),
//	    "amount": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50"), decimal.Decimal("0.01")], pa.decimal128(9, 2)),
//	    "note": pa.array(["x", "", None, "a longer note than twelve bytes"], pa.large_string()),
//	    "tag": pa.array(["short", None, "a string view longer than twelve", "s"], pa.string_view()),
//	    "raw": pa.array([b"\x00\x01", None, b"", b"bytes"], pa.binary()),
//	    "clock": pa.array([datetime.time(1, 2, 3), None, datetime.time(4, 5, 6, 7), datetime.time(23, 59)], pa.time64("us")),
//	})
//	with pa.ipc.new_file("pyarrow.arrow", t.schema) as w:
//	    for b in t.to_batches(max_chunksize=2):
//	        w.write_batch(b)
//	feather.write_feather(t, "pyarrow_lz4.feather", compression="lz4", chunksize=2)
//	feather.write_feather(t, "pyarrow_zstd.feather", compression="zstd", chunksize=2)
var PyarrowFiles = []string{"pyarrow.arrow", "pyarrow_lz4.feather", "pyarrow_zstd.feather"}

//go:embed testdata
var testdata embed.FS

// Pyarrow returns the file of PyarrowFiles named name.
func Pyarrow(t testing.TB, name string) []byte {
	b, err := testdata.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// HugeSchema is a schema message (a Message flatbuffer, as a FlightData's
// data_header) that says it has 335,544,320 fields in 115 bytes: arrow-go
// would allocate 29 GiB for them and the process would die of it (found
// by FuzzMessageStream in flight).
var HugeSchema = []byte("\x10\x00\x00\x00\x00\x00\n\x00\f\x00\n\x00\t\x00\x04\x00\n\x00\x00\x00\x10\x00\x00\x00\x00\x01\x04\x00\b\x00\b\x00\x00\x00\x04\x00\b\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x14\x00\x00\x00\x10\x00\x14\x00\x10\x00\x00\x00\x0f\x00\b\x00\x00\x00\x04\x00\x10\x00\x00\x00\x10\x00\x00\x00\x18\x00\x00\x00\x00\x00\x00\x02\x1c\x00\x00\x00\x00\x00\x00\x00\b\x00\f\x00\b\x00\a\x00\b\x00\x00\x00\x00\x00\x00\x01@\x00\x00\x00\x01\x00\x00\x00")

// Message is one message of an Arrow IPC stream: its header (a Message
// flatbuffer) and body, as a FlightData carries them.
type Message struct {
	Header, Body []byte
}

// StreamMessages returns the messages of an IPC stream of rec written
// with opts (compression), as a Flight writer sends them.
func StreamMessages(t testing.TB, rec arrow.RecordBatch, opts ...ipc.Option) []Message {
	t.Helper()
	var sent collect
	w := flight.NewRecordWriter(&sent, append([]ipc.Option{ipc.WithSchema(rec.Schema())}, opts...)...)
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return sent
}

// collect keeps the messages a Flight writer sends it.
type collect []Message

func (c *collect) Send(fd *flight.FlightData) error {
	*c = append(*c, Message{Header: bytes.Clone(fd.DataHeader), Body: bytes.Clone(fd.DataBody)})
	return nil
}

// CompressionBomb returns the messages of a stream of one LZ4-compressed
// batch whose first compressed buffer says it decompresses to 1 TiB.
func CompressionBomb(t testing.TB) []Message {
	t.Helper()
	b := array.NewInt64Builder(memory.DefaultAllocator)
	for i := range 1000 {
		b.Append(int64(i))
	}
	col := b.NewArray()
	b.Release()
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, 1000)
	col.Release()
	defer rec.Release()
	msgs := StreamMessages(t, rec, ipc.WithLZ4())
	// The values buffer (no validity bitmap: no nulls) starts the body
	// with its uncompressed length.
	binary.LittleEndian.PutUint64(msgs[1].Body, 1<<40)
	return msgs
}
