package arrowipc

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
)

// fingerprintOf fingerprints the Arrow IPC file data.
func fingerprintOf(t *testing.T, data []byte) (string, int64) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	f, err := Open(writeTemp(t, data), Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fp, rows, err := f.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(fp) != 32 {
		t.Errorf("fingerprint %q is not 32 hex digits", fp)
	}
	return fp, rows
}

// dictArrayFile writes a file of one dictionary-encoded column "cat" with
// the given dictionary and indices (JSON).
func dictArrayFile(t *testing.T, dict, indices string) []byte {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d, _, err := array.FromJSON(mem, arrow.BinaryTypes.String, strings.NewReader(dict))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	idx, _, err := array.FromJSON(mem, arrow.PrimitiveTypes.Int32, strings.NewReader(indices))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Release()
	col := array.NewDictionaryArray(dictString, idx, d)
	defer col.Release()
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "cat", Type: dictString, Nullable: true}}, nil),
		[]arrow.Array{col}, int64(col.Len()))
	defer rec.Release()
	return writeRecords(t, false, rec)
}

func field(name string, typ arrow.DataType) *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{{Name: name, Type: typ, Nullable: true}}, nil)
}

// The fingerprint is a function of the table (schema and the multiset of
// rows), not of how its rows are cut into batches, ordered or encoded.
func TestFingerprintSameTable(t *testing.T) {
	t.Parallel()
	nested := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "pt", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true}), Nullable: true},
	}, nil)
	tests := []struct {
		name string
		a, b func(t *testing.T) []byte
	}{
		{
			name: "batch boundaries",
			a: func(t *testing.T) []byte {
				return jsonFile(t, idName, `[{"id": 1, "name": "a"}, {"id": 2}, {"id": 3, "name": "c"}]`)
			},
			b: func(t *testing.T) []byte {
				return jsonFile(t, idName, `[{"id": 1, "name": "a"}]`, `[]`, `[{"id": 2}, {"id": 3, "name": "c"}]`)
			},
		},
		{
			name: "row order",
			a: func(t *testing.T) []byte {
				return jsonFile(t, idName, `[{"id": 1, "name": "a"}, {"id": 2}]`)
			},
			b: func(t *testing.T) []byte {
				return jsonFile(t, idName, `[{"id": 2}, {"id": 1, "name": "a"}]`)
			},
		},
		{
			name: "dictionary order",
			a:    func(t *testing.T) []byte { return dictArrayFile(t, `["p", "q"]`, `[0, 1, null, 0]`) },
			b:    func(t *testing.T) []byte { return dictArrayFile(t, `["q", "p", "r"]`, `[1, 0, null, 1]`) },
		},
		{
			name: "nested values in other batches",
			a: func(t *testing.T) []byte {
				return jsonFile(t, nested, `[{"id": 1, "tags": ["a", "b"], "pt": {"x": 1}}, {"id": 2, "tags": [], "pt": null}]`)
			},
			b: func(t *testing.T) []byte {
				return jsonFile(t, nested, `[{"id": 2, "tags": [], "pt": null}]`, `[{"id": 1, "tags": ["a", "b"], "pt": {"x": 1}}]`)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, ra := fingerprintOf(t, tc.a(t))
			b, rb := fingerprintOf(t, tc.b(t))
			if a != b || ra != rb {
				t.Errorf("fingerprints %s (%d rows) and %s (%d rows) differ", a, ra, b, rb)
			}
		})
	}
}

// Tables that differ in any value, in a NULL, in a column's name or type,
// or in how values split between rows, columns or list elements,
// fingerprint differently.
func TestFingerprintDifferentData(t *testing.T) {
	t.Parallel()
	str, i64, f64 := arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64
	two := arrow.NewSchema([]arrow.Field{{Name: "a", Type: str, Nullable: true}, {Name: "b", Type: str, Nullable: true}}, nil)
	list := field("l", arrow.ListOf(i64))
	tests := []struct {
		name string
		a, b func(t *testing.T) []byte
	}{
		{"1 and \"1\"",
			func(t *testing.T) []byte { return jsonFile(t, field("v", i64), `[{"v": 1}]`) },
			func(t *testing.T) []byte { return jsonFile(t, field("v", str), `[{"v": "1"}]`) }},
		{"NULL and empty string",
			func(t *testing.T) []byte { return jsonFile(t, field("v", str), `[{"v": null}]`) },
			func(t *testing.T) []byte { return jsonFile(t, field("v", str), `[{"v": ""}]`) }},
		{"NULL and 0",
			func(t *testing.T) []byte { return jsonFile(t, field("v", i64), `[{"v": null}]`) },
			func(t *testing.T) []byte { return jsonFile(t, field("v", i64), `[{"v": 0}]`) }},
		{"-0.0 and 0.0",
			func(t *testing.T) []byte { return jsonFile(t, field("v", f64), `[{"v": -0.0}]`) },
			func(t *testing.T) []byte { return jsonFile(t, field("v", f64), `[{"v": 0.0}]`) }},
		{"one value",
			func(t *testing.T) []byte {
				return jsonFile(t, idName, `[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]`)
			},
			func(t *testing.T) []byte {
				return jsonFile(t, idName, `[{"id": 1, "name": "a"}, {"id": 2, "name": "c"}]`)
			}},
		{"values swapped between rows",
			func(t *testing.T) []byte {
				return jsonFile(t, idName, `[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]`)
			},
			func(t *testing.T) []byte {
				return jsonFile(t, idName, `[{"id": 1, "name": "b"}, {"id": 2, "name": "a"}]`)
			}},
		{"a row twice",
			func(t *testing.T) []byte { return jsonFile(t, idName, `[{"id": 1, "name": "a"}]`) },
			func(t *testing.T) []byte {
				return jsonFile(t, idName, `[{"id": 1, "name": "a"}, {"id": 1, "name": "a"}]`)
			}},
		{"bytes moved between columns",
			func(t *testing.T) []byte { return jsonFile(t, two, `[{"a": "ab", "b": "c"}]`) },
			func(t *testing.T) []byte { return jsonFile(t, two, `[{"a": "a", "b": "bc"}]`) }},
		{"elements moved between lists",
			func(t *testing.T) []byte { return jsonFile(t, list, `[{"l": [1, 2]}, {"l": [3]}]`) },
			func(t *testing.T) []byte { return jsonFile(t, list, `[{"l": [1]}, {"l": [2, 3]}]`) }},
		{"empty list and NULL",
			func(t *testing.T) []byte { return jsonFile(t, list, `[{"l": []}]`) },
			func(t *testing.T) []byte { return jsonFile(t, list, `[{"l": null}]`) }},
		{"column name",
			func(t *testing.T) []byte { return jsonFile(t, field("v", i64), `[{"v": 1}]`) },
			func(t *testing.T) []byte { return jsonFile(t, field("w", i64), `[{"w": 1}]`) }},
		{"dictionary-encoded and plain",
			func(t *testing.T) []byte { return dictArrayFile(t, `["p"]`, `[0]`) },
			func(t *testing.T) []byte { return jsonFile(t, field("cat", str), `[{"cat": "p"}]`) }},
		{"no rows and one",
			func(t *testing.T) []byte { return jsonFile(t, field("v", i64), `[]`) },
			func(t *testing.T) []byte { return jsonFile(t, field("v", i64), `[{"v": 0}]`) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, _ := fingerprintOf(t, tc.a(t))
			b, _ := fingerprintOf(t, tc.b(t))
			if a == b {
				t.Errorf("both fingerprint %s", a)
			}
		})
	}
}

// A slice of an array encodes each value as the array it was cut from
// does: the encoding reads values at the array's offset.
func TestEncodeSlices(t *testing.T) {
	t.Parallel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	data := ipctest.Seeds(t)["nested"]
	f, err := Open(writeTemp(t, data), Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec, err := f.Batch(0)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	for c, col := range rec.Columns() {
		whole, err := encoderOf(col)
		if err != nil {
			t.Fatal(err)
		}
		s := array.NewSlice(col, 1, int64(col.Len()))
		part, err := encoderOf(s)
		if err != nil {
			t.Fatal(err)
		}
		for i := range s.Len() {
			if w, p := whole(nil, i+1), part(nil, i); !bytes.Equal(w, p) {
				t.Errorf("column %s row %d: %x, sliced %x", rec.ColumnName(c), i+1, w, p)
			}
		}
		s.Release()
	}
}

// BenchmarkFingerprint fingerprints a file of a million rows of an
// integer, a float and a short string.
func BenchmarkFingerprint(b *testing.B) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "usd", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer rb.Release()
	const rows = 1 << 20
	for i := range rows {
		rb.Field(0).(*array.Int64Builder).Append(int64(i))
		rb.Field(1).(*array.Float64Builder).Append(float64(i) / 4)
		rb.Field(2).(*array.StringBuilder).Append("name" + strings.Repeat("x", i%8))
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	path := writeTemp(b, writeRecords(b, false, rec))
	f, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := f.Fingerprint(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mrows/s")
}
