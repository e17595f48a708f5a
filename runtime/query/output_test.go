package query_test

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
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
