package flight

import (
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// errReader is a RecordReader over batches that fails with err at the end.
type errReader struct {
	array.RecordReader
	err error
}

func (r errReader) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.RecordReader.Err()
}

func TestRechunk(t *testing.T) {
	t.Parallel()
	schema := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}, {Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	// batches builds sizes batches of consecutive n (s is n as text).
	batches := func(mem memory.Allocator, sizes ...int) []arrow.RecordBatch {
		var out []arrow.RecordBatch
		next := int64(0)
		for _, size := range sizes {
			b := array.NewRecordBuilder(mem, schema)
			for i := 0; i < size; i++ {
				b.Field(0).(*array.Int64Builder).Append(next)
				b.Field(1).(*array.StringBuilder).Append(string(rune('a' + next%26)))
				next++
			}
			out = append(out, b.NewRecordBatch())
			b.Release()
		}
		return out
	}
	cases := []struct {
		name  string
		sizes []int
		stop  int // emit returns false on this batch (0: never)
		err   error
		want  []int64
	}{
		{name: "empty", want: nil},
		{name: "one small batch", sizes: []int{10}, want: []int64{10}},
		{name: "vectors are combined", sizes: repeat(2048, 70), want: []int64{65536, 65536, 70*2048 - 2*65536}},
		{name: "a big batch passes alone", sizes: []int{200_000}, want: []int64{200_000}},
		{name: "empty batches are dropped", sizes: []int{0, 5, 0, 7}, want: []int64{12}},
		{name: "stop early", sizes: repeat(2048, 100), stop: 1, want: []int64{65536}},
		{name: "reader error after rows", sizes: []int{3}, err: errors.New("disk on fire"), want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			in := batches(mem, tc.sizes...)
			rr, err := array.NewRecordReader(schema, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range in {
				b.Release()
			}
			defer rr.Release()
			var got []int64
			next := int64(0)
			err = rechunk(errReader{rr, tc.err}, mem, func(b arrow.RecordBatch) bool {
				defer b.Release()
				got = append(got, b.NumRows())
				ns := b.Column(0).(*array.Int64)
				for i := 0; i < ns.Len(); i++ {
					if ns.Value(i) != next {
						t.Fatalf("row %d: n = %d", next, ns.Value(i))
					}
					next++
				}
				return tc.stop == 0 || len(got) < tc.stop
			})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("batches %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("batches %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func repeat(n, times int) []int {
	out := make([]int, times)
	for i := range out {
		out[i] = n
	}
	return out
}

// TestRechunkSparseUnion: batches arrow-go cannot concatenate (a sparse
// union column) go as they came, each once, all released.
func TestRechunkSparseUnion(t *testing.T) {
	t.Parallel()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	var in []arrow.RecordBatch
	var schema *arrow.Schema
	for range 3 {
		ib := array.NewInt8Builder(mem)
		ib.AppendValues([]int8{0, 0}, nil)
		ids := ib.NewArray()
		ib.Release()
		xb := array.NewInt64Builder(mem)
		xb.AppendValues([]int64{1, 2}, nil)
		xs := xb.NewArray()
		xb.Release()
		u, err := array.NewSparseUnionFromArrays(ids, []arrow.Array{xs})
		if err != nil {
			t.Fatal(err)
		}
		ids.Release()
		xs.Release()
		schema = arrow.NewSchema([]arrow.Field{{Name: "u", Type: u.DataType(), Nullable: true}}, nil)
		in = append(in, array.NewRecordBatch(schema, []arrow.Array{u}, 2))
		u.Release()
	}
	r, err := array.NewRecordReader(schema, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range in {
		b.Release()
	}
	var got []int64
	err = rechunk(r, mem, func(b arrow.RecordBatch) bool {
		got = append(got, b.NumRows())
		b.Release()
		return true
	})
	r.Release()
	if err != nil || len(got) != 3 {
		t.Fatalf("batches %v, err %v", got, err)
	}
}
