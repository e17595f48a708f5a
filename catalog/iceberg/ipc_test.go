package iceberg

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// writeIPC writes an Arrow IPC file with one record batch per column set,
// as pyarrow's ipc.new_file or arrow-go's ipc.FileWriter do.
func writeIPC(t *testing.T, dir, name string, batches ...[]col) string {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := make([]arrow.RecordBatch, len(batches))
	for i, cols := range batches {
		recs[i] = buildRecord(t, mem, cols...)
		defer recs[i].Release()
	}
	return writeIPCRecords(t, filepath.Join(dir, name), false, recs...)
}

// writeIPCRecords writes records as an Arrow IPC file, or stream.
func writeIPCRecords(t *testing.T, path string, stream bool, recs ...arrow.RecordBatch) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w interface {
		Write(arrow.RecordBatch) error
		Close() error
	}
	if stream {
		w = ipc.NewWriter(f, ipc.WithSchema(recs[0].Schema()))
	} else if w, err = ipc.NewFileWriter(f, ipc.WithSchema(recs[0].Schema())); err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

var dictString = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// A file of no rows still gives a new table its columns.
func TestImportIPCNoRows(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	src := writeIPC(t, t.TempDir(), "out.arrow", []col{{"id", arrow.PrimitiveTypes.Int64, nil}})
	out := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}})
	info := describe(t, f, out.Entry)
	if !out.Created || out.Rows != 0 || schemaString(info) != "id:long" || info.Snapshot != nil {
		t.Errorf("outcome %+v, info %+v", out, info)
	}
}

// A batch larger than BatchRows is cut into slices; every row arrives once.
func TestImportIPCSlicesBigBatches(t *testing.T) {
	t.Parallel()
	for _, dict := range []bool{false, true} {
		t.Run(fmt.Sprintf("dictionary=%v", dict), func(t *testing.T) {
			t.Parallel()
			f := newTestFormat(t)
			f.opts.BatchRows = 100
			var ids, names []any
			var want []string
			for i := range 2550 {
				ids = append(ids, i)
				names = append(names, fmt.Sprintf("n%d", i%7))
				want = append(want, fmt.Sprintf("%d|n%d", i, i%7))
			}
			typ := arrow.DataType(arrow.BinaryTypes.String)
			if dict {
				typ = dictString
			}
			batches := [][]col{
				{{"id", arrow.PrimitiveTypes.Int64, ids[:2500]}, {"name", typ, names[:2500]}},
				{{"id", arrow.PrimitiveTypes.Int64, ids[2500:]}, {"name", typ, names[2500:]}},
			}
			if dict { // an IPC file holds one dictionary per column
				batches = [][]col{{{"id", arrow.PrimitiveTypes.Int64, ids}, {"name", typ, names}}}
			}
			src := writeIPC(t, t.TempDir(), "big.arrow", batches...)
			out := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}})
			if out.Rows != 2550 {
				t.Errorf("rows = %d", out.Rows)
			}
			sort.Strings(want)
			eqStrings(t, "rows", scan(t, out.Entry, "id", "name"), want)
		})
	}
}

func TestBadIPC(t *testing.T) {
	t.Parallel()
	good := func(t *testing.T, dir, name string) string {
		return writeIPC(t, dir, name, []col{{"id", arrow.PrimitiveTypes.Int64, []any{1, 2, 3}},
			{"name", arrow.BinaryTypes.String, []any{"one", "two", "three"}}})
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) []string
		wantErr string
	}{
		{
			name:    "empty file",
			setup:   func(t *testing.T, dir string) []string { return []string{writeFile(t, dir, "a.arrow", "")} },
			wantErr: `file %DIR%/a.arrow is empty, not an Arrow IPC file; ` + arrowipc.Hint,
		},
		{
			name: "wrong magic",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.arrow", "id,name\n1,one\n")}
			},
			wantErr: `file %DIR%/a.arrow is not an Arrow IPC file: it does not start with the magic bytes "ARROW1"; ` + arrowipc.Hint,
		},
		{
			name: "truncated",
			setup: func(t *testing.T, dir string) []string {
				p := good(t, dir, "a.arrow")
				info, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(p, info.Size()/2); err != nil {
					t.Fatal(err)
				}
				return []string{p}
			},
			wantErr: `file %DIR%/a.arrow is not a complete Arrow IPC file: it does not end with the magic bytes "ARROW1"; was it truncated, or is it still being written?`,
		},
		{
			name: "a stream, not a file",
			setup: func(t *testing.T, dir string) []string {
				mem := memory.NewGoAllocator()
				rec := buildRecord(t, mem, col{"id", arrow.PrimitiveTypes.Int64, []any{1}})
				defer rec.Release()
				return []string{writeIPCRecords(t, filepath.Join(dir, "a.arrow"), true, rec)}
			},
			wantErr: `file %DIR%/a.arrow is an Arrow IPC stream, not an Arrow IPC file; ` + arrowipc.Hint,
		},
		{
			name: "corrupt footer",
			setup: func(t *testing.T, dir string) []string {
				return []string{writeFile(t, dir, "a.arrow", "ARROW1\x00\x00garbagegarbage\x0e\x00\x00\x00ARROW1")}
			},
			wantErr: `file %DIR%/a.arrow is not a valid Arrow IPC file: `,
		},
		{
			name: "corrupt record batch",
			setup: func(t *testing.T, dir string) []string {
				p := good(t, dir, "a.arrow")
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				// Zero everything between the leading magic and the footer.
				footer := int(binary.LittleEndian.Uint32(b[len(b)-10:]))
				clear(b[8 : len(b)-10-footer])
				return []string{writeFile(t, dir, "a.arrow", string(b))}
			},
			wantErr: `file %DIR%/a.arrow is not a valid Arrow IPC file: `,
		},
		{
			name: "nested column",
			setup: func(t *testing.T, dir string) []string {
				mem := memory.NewGoAllocator()
				lb := array.NewListBuilder(mem, arrow.PrimitiveTypes.Int64)
				defer lb.Release()
				lb.Append(true)
				lb.ValueBuilder().(*array.Int64Builder).Append(1)
				tags := lb.NewArray()
				defer tags.Release()
				sc := arrow.NewSchema([]arrow.Field{{Name: "tags", Type: tags.DataType(), Nullable: true}}, nil)
				rec := array.NewRecordBatch(sc, []arrow.Array{tags}, 1)
				defer rec.Release()
				return []string{writeIPCRecords(t, filepath.Join(dir, "a.arrow"), false, rec)}
			},
			wantErr: `file %DIR%/a.arrow: column "tags" has type list<item: int64, nullable>, which import does not support; `,
		},
		{
			name: "second file bad",
			setup: func(t *testing.T, dir string) []string {
				return []string{good(t, dir, "a.arrow"), writeFile(t, dir, "b.ipc", "ARROW1")}
			},
			wantErr: `file %DIR%/b.ipc is not a complete Arrow IPC file`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFormat(t)
			dir := t.TempDir()
			_, err := f.Import(context.Background(), catalog.ImportSpec{Ident: salesIdent, Sources: tc.setup(t, dir)})
			want := strings.ReplaceAll(tc.wantErr, "%DIR%", dir)
			if err == nil || !strings.HasPrefix(err.Error(), want) || !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error = %v\nwant %s (invalid argument)", err, want)
			}
			if ents := listDir(t, f, f.Storage().URI("sales")); len(ents) != 0 {
				t.Errorf("warehouse has %d entries after a failed import", len(ents))
			}
		})
	}
}

// What ipcSlice hands on never points into the mapping, whether or not a
// column needed a cast, whether or not the file is read in place: it
// outlives the mapping.
func TestIPCSliceCopiesOutOfTheMapping(t *testing.T) {
	t.Parallel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	cols := []col{
		{"id", arrow.PrimitiveTypes.Int64, []any{1, 2, 3}},
		{"name", arrow.BinaryTypes.String, []any{"a", nil, "c"}},
		{"note", arrow.BinaryTypes.LargeString, []any{"x", "y", nil}},
	}
	for _, dict := range []bool{false, true} {
		c := cols
		if dict {
			c = append(c[:2:2], col{"cat", dictString, []any{"p", "q", "p"}})
		}
		p := writeIPC(t, dir, fmt.Sprintf("dict-%v.arrow", dict), c)
		f, err := arrowipc.Open(p, arrowipc.Options{Allocator: mem})
		if err != nil {
			t.Fatal(err)
		}
		if f.InPlace() == dict {
			t.Errorf("dictionary %v: read in place = %v", dict, f.InPlace())
		}
		in, err := f.Batch(0)
		if err != nil {
			t.Fatal(err)
		}
		schema := arrow.NewSchema([]arrow.Field{
			{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
			{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true},
		}, nil)
		out, err := ipcSlice(context.Background(), mem, f, in, 1, 3, schema, []int{0, 1, 2})
		if err != nil {
			t.Fatal(err)
		}
		in.Release()
		f.Close()
		// The slice outlives the mapping: reading it faults if it does not.
		want := map[bool]string{false: `[2 3] [(null) "c"] ["y" (null)]`, true: `[2 3] [(null) "c"] ["q" "p"]`}[dict]
		func() {
			defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("dictionary %v: the slice points into the mapping: %v", dict, r)
				}
			}()
			if got := fmt.Sprint(out.Column(0), out.Column(1), out.Column(2)); got != want {
				t.Errorf("dictionary %v: slice = %s, want %s", dict, got, want)
			}
		}()
		out.Release()
	}
}

// Files pyarrow 26 wrote (ipctest.PyarrowFiles, which says how), with the
// types pandas frames carry, import.
func TestImportIPCFromPyarrow(t *testing.T) {
	t.Parallel()
	want := []string{
		"(null)|3.25|carl|(null)|false|2024-03-02T00:00:00Z|2024-01-03|-3.5|(null)|a string view longer than twelve||04:05:06.000007",
		"1|1.5|ann|IT|true|2024-03-01T10:00:00.123456Z|2024-01-01|1.25|x|short|AAE=|01:02:03.000000",
		"2|(null)|(null)|FR|(null)|(null)|(null)|(null)||(null)|(null)|(null)",
		"4|4|dora|IT|true|2024-03-03T00:00:00Z|2024-01-04|0.01|a longer note than twelve bytes|s|Ynl0ZXM=|23:59:00.000000",
	}
	for _, name := range ipctest.PyarrowFiles {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newTestFormat(t)
			src := writeFile(t, t.TempDir(), name, string(ipctest.Pyarrow(t, name)))
			out := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}})
			if out.Rows != 4 {
				t.Errorf("rows = %d", out.Rows)
			}
			got := scan(t, out.Entry, "id", "usd", "name", "country", "paid", "at", "day", "amount", "note", "tag", "raw", "clock")
			sort.Strings(got)
			eqStrings(t, "rows", got, want)
		})
	}
}
