package query_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// TestWriteCSV: the CSV writer's output reads back with encoding/csv to the
// same cells, including quoting and nulls.
func TestWriteCSV(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "s, \"t\"", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3, 4}, []bool{true, true, false, true})
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"plain", "a,b", `say "hi"`, " lead\nline"}, []bool{true, true, true, true})
	b.Field(2).(*array.Date32Builder).AppendValues([]arrow.Date32{0, 19000, 19000, 1}, []bool{true, true, true, false})
	b.Field(3).(*array.Float64Builder).AppendValues([]float64{0.1, 1e21, -2.5, 3}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	rr, err := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var out bytes.Buffer
	st, err := query.Write(&out, rr, query.FormatCSV, -1)
	if err != nil || st.Rows != 4 {
		t.Fatalf("rows %d, err %v", st.Rows, err)
	}
	got, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatalf("%v in\n%s", err, out.String())
	}
	want := [][]string{
		{"id", "s, \"t\"", "d", "f"},
		{"1", "plain", "1970-01-01", "0.1"},
		{"2", "a,b", "2022-01-08", "1e+21"},
		{"", `say "hi"`, "2022-01-08", "-2.5"},
		{"4", " lead\nline", "", "3"},
	}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Errorf("row %d col %d: %q, want %q", i, j, got[i][j], want[i][j])
			}
		}
	}
}

// TestWriteTypedValues: decimals keep every digit, timestamps are RFC 3339
// (Z with a zone, no offset without), the empty string is not NULL, and
// intervals are written by every format.
func TestWriteTypedValues(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dec := &arrow.Decimal128Type{Precision: 38, Scale: 9}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "d", Type: dec, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "tz", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "Europe/Rome"}, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "iv", Type: arrow.FixedWidthTypes.MonthDayNanoInterval, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	d, err := decimal128.FromString("12345678901234567890.123456789", 38, 9)
	if err != nil {
		t.Fatal(err)
	}
	b.Field(0).(*array.Decimal128Builder).AppendValues([]decimal128.Num{d, {}}, []bool{true, false})
	ts := arrow.Timestamp(time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC).UnixMicro())
	b.Field(1).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{ts, 0}, []bool{true, false})
	b.Field(2).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{ts, 0}, []bool{true, false})
	b.Field(3).(*array.StringBuilder).AppendValues([]string{"", ""}, []bool{true, false})
	b.Field(4).(*array.MonthDayNanoIntervalBuilder).AppendValues(
		[]arrow.MonthDayNanoInterval{{Months: -1, Days: 2, Nanoseconds: 3}, {}}, []bool{true, false})
	rec := b.NewRecordBatch()
	defer rec.Release()

	write := func(format string) []byte {
		t.Helper()
		rr, err := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
		if err != nil {
			t.Fatal(err)
		}
		defer rr.Release()
		var out bytes.Buffer
		if st, err := query.Write(&out, rr, format, -1); err != nil || st.Rows != 2 {
			t.Fatalf("%s: rows %d, err %v", format, st.Rows, err)
		}
		return out.Bytes()
	}
	cases := []struct{ format, want string }{
		{query.FormatJSONL, `{"d":"12345678901234567890.123456789","ts":"2024-01-02T03:04:05.123456","tz":"2024-01-02T03:04:05.123456Z","s":"","iv":{"months":-1,"days":2,"nanoseconds":3}}` + "\n" +
			`{"d":null,"ts":null,"tz":null,"s":null,"iv":null}` + "\n"},
		{query.FormatCSV, "d,ts,tz,s,iv\n" +
			`12345678901234567890.123456789,2024-01-02T03:04:05.123456,2024-01-02T03:04:05.123456Z,"","{""months"":-1,""days"":2,""nanoseconds"":3}"` + "\n" +
			",,,,\n"},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			if got := string(write(c.format)); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
	t.Run("arrow", func(t *testing.T) {
		// The IPC file format: magic at both ends, readable by ipc.NewFileReader.
		got := write(query.FormatArrow)
		if !bytes.HasPrefix(got, []byte("ARROW1")) || !bytes.HasSuffix(got, []byte("ARROW1")) {
			t.Fatalf("no ARROW1 magic at both ends of %d bytes", len(got))
		}
		r, err := ipc.NewFileReader(bytes.NewReader(got), ipc.WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.NumRecords() != 1 || !r.Schema().Equal(schema) {
			t.Fatalf("%d batches of %s", r.NumRecords(), r.Schema())
		}
	})
	t.Run("arrows", func(t *testing.T) {
		r, err := ipc.NewReader(bytes.NewReader(write(query.FormatArrows)), ipc.WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		n := 0
		for r.Next() {
			n += int(r.RecordBatch().NumRows())
		}
		if n != 2 || r.Err() != nil {
			t.Fatalf("%d rows, %v", n, r.Err())
		}
	})
	t.Run("parquet", func(t *testing.T) {
		// Intervals become struct<months, days, nanoseconds>.
		got := write(query.FormatParquet)
		tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(got), nil, pqarrow.ArrowReadProperties{}, mem)
		if err != nil {
			t.Fatal(err)
		}
		defer tbl.Release()
		iv := tbl.Column(4).Data().Chunk(0).(*array.Struct)
		if iv.IsValid(1) || iv.Field(0).(*array.Int32).Value(0) != -1 || iv.Field(1).(*array.Int32).Value(0) != 2 ||
			iv.Field(2).(*array.Int64).Value(0) != 3 {
			t.Errorf("interval column reads back as %v", iv)
		}
	})
}
