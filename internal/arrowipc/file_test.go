package arrowipc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

var dictString = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// writeRecords writes recs as an Arrow IPC file, or stream, and returns its
// bytes.
func writeRecords(t testing.TB, stream bool, recs ...arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write(arrow.RecordBatch) error
		Close() error
	}
	if stream {
		w = ipc.NewWriter(&buf, ipc.WithSchema(recs[0].Schema()))
	} else {
		fw, err := ipc.NewFileWriter(&buf, ipc.WithSchema(recs[0].Schema()))
		if err != nil {
			t.Fatal(err)
		}
		w = fw
	}
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fromJSON returns batches of rows (JSON) of schema, allocated in mem.
func fromJSON(t testing.TB, mem memory.Allocator, schema *arrow.Schema, batches ...string) []arrow.RecordBatch {
	t.Helper()
	recs := make([]arrow.RecordBatch, len(batches))
	for i, rows := range batches {
		rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(rows))
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = rec
	}
	return recs
}

// jsonFile writes batches of rows (JSON) of schema as an Arrow IPC file.
func jsonFile(t testing.TB, schema *arrow.Schema, batches ...string) []byte {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := fromJSON(t, mem, schema, batches...)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	return writeRecords(t, false, recs...)
}

// dictFile is an Arrow IPC file of one dictionary-encoded column, cat, as
// pandas writes a categorical.
func dictFile(t testing.TB, vals []string) []byte {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewDictionaryBuilder(mem, dictString).(*array.BinaryDictionaryBuilder)
	defer b.Release()
	for _, v := range vals {
		if err := b.AppendString(v); err != nil {
			t.Fatal(err)
		}
	}
	col := b.NewArray()
	defer col.Release()
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "cat", Type: dictString, Nullable: true}}, nil),
		[]arrow.Array{col}, int64(len(vals)))
	defer rec.Release()
	return writeRecords(t, false, rec)
}

// writeTemp writes data to a new file and returns its path.
func writeTemp(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.arrow")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var idName = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)

func TestOpenBadFiles(t *testing.T) {
	t.Parallel()
	good := func(t *testing.T) []byte {
		return jsonFile(t, idName, `[{"id": 1, "name": "one"}, {"id": 2, "name": "two"}, {"id": 3, "name": "three"}]`)
	}
	tests := []struct {
		name    string
		data    func(t *testing.T) []byte
		wantErr string
	}{
		{
			name:    "empty file",
			data:    func(*testing.T) []byte { return nil },
			wantErr: `file %PATH% is empty, not an Arrow IPC file; ` + Hint,
		},
		{
			name:    "wrong magic",
			data:    func(*testing.T) []byte { return []byte("id,name\n1,one\n") },
			wantErr: `file %PATH% is not an Arrow IPC file: it does not start with the magic bytes "ARROW1"; ` + Hint,
		},
		{
			name:    "truncated",
			data:    func(t *testing.T) []byte { b := good(t); return b[:len(b)/2] },
			wantErr: `file %PATH% is not a complete Arrow IPC file: it does not end with the magic bytes "ARROW1"; was it truncated, or is it still being written?`,
		},
		{
			name: "a stream, not a file",
			data: func(t *testing.T) []byte {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				recs := fromJSON(t, mem, idName, `[{"id": 1}]`)
				defer recs[0].Release()
				return writeRecords(t, true, recs...)
			},
			wantErr: `file %PATH% is an Arrow IPC stream, not an Arrow IPC file; ` + Hint,
		},
		{
			name:    "corrupt footer",
			data:    func(*testing.T) []byte { return []byte("ARROW1\x00\x00garbagegarbage\x0e\x00\x00\x00ARROW1") },
			wantErr: `file %PATH% is not a valid Arrow IPC file: `,
		},
		{
			name: "corrupt record batch",
			data: func(t *testing.T) []byte {
				b := good(t)
				// Zero everything between the leading magic and the footer.
				footer := int(binary.LittleEndian.Uint32(b[len(b)-10:]))
				clear(b[8 : len(b)-10-footer])
				return b
			},
			wantErr: `file %PATH% is not a valid Arrow IPC file: record batch 0: `,
		},
		{
			name:    "too short",
			data:    func(*testing.T) []byte { return []byte("ARROW1") },
			wantErr: `file %PATH% is not a complete Arrow IPC file`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := writeTemp(t, tc.data(t))
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			err := readAll(p, mem)
			want := strings.ReplaceAll(tc.wantErr, "%PATH%", p)
			if err == nil || !strings.HasPrefix(err.Error(), want) || !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error = %v\nwant %s (invalid argument)", err, want)
			}
		})
	}
}

// Every seed file (flat types, nested types, compressed, pyarrow's) opens
// and reads; whatever was allocated is released.
func TestReadSeeds(t *testing.T) {
	t.Parallel()
	for name, data := range ipctest.Seeds(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			if err := readAll(writeTemp(t, data), mem); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A file without dictionaries is read in place; what Detach returns never
// points into the mapping, and outlives it.
func TestDetachCopiesOutOfTheMapping(t *testing.T) {
	t.Parallel()
	for _, dict := range []bool{false, true} {
		t.Run(fmt.Sprintf("dictionary=%v", dict), func(t *testing.T) {
			t.Parallel()
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			data := jsonFile(t, idName, `[{"id": 1, "name": "a"}, {"id": 2}, {"id": 3, "name": "c"}]`)
			if dict {
				data = dictFile(t, []string{"p", "q", "p"})
			}
			f, err := Open(writeTemp(t, data), Options{Allocator: mem})
			if err != nil {
				t.Fatal(err)
			}
			if f.InPlace() == dict {
				t.Errorf("read in place = %v", f.InPlace())
			}
			in, err := f.Batch(0)
			if err != nil {
				t.Fatal(err)
			}
			if !dict && !f.aliases(in.Column(0).Data()) {
				t.Error("a batch read in place does not point into the mapping")
			}
			var out []arrow.Array
			err = f.Guard(func() error {
				for _, c := range in.Columns() {
					s := array.NewSlice(c, 1, 3)
					d, err := f.Detach(s, mem)
					s.Release()
					if err != nil {
						return err
					}
					out = append(out, d)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range out {
				if f.aliases(c.Data()) {
					t.Errorf("column %d of a slice points into the mapping", i)
				}
			}
			in.Release()
			f.Close()
			want := map[bool]string{false: `[[2 3] [(null) "c"]]`, true: `[{ dictionary: ["p" "q"]
  indices: [1 0] }]`}[dict]
			if got := fmt.Sprint(out); got != want {
				t.Errorf("slice = %s, want %s", got, want)
			}
			for _, c := range out {
				c.Release()
			}
		})
	}
}

// Reader hands on every batch, validated, in order.
func TestReader(t *testing.T) {
	t.Parallel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	data := jsonFile(t, idName, `[{"id": 1, "name": "a"}]`, `[]`, `[{"id": 2}, {"id": 3, "name": "c"}]`)
	f, err := Open(writeTemp(t, data), Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := f.Reader()
	defer r.Release()
	var got []string
	for r.Next() {
		got = append(got, fmt.Sprint(r.RecordBatch().Column(0)))
	}
	if r.Err() != nil || strings.Join(got, " ") != "[1] [] [2 3]" {
		t.Errorf("batches %v, error %v", got, r.Err())
	}
	if rows, err := f.Rows(context.Background()); rows != 3 || err != nil {
		t.Errorf("rows = %d, %v", rows, err)
	}
}

// Write writes what a reader gives, renames the file into place only when
// it is complete, and refuses to write over a file being written.
func TestWrite(t *testing.T) {
	t.Parallel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := fromJSON(t, mem, idName, `[{"id": 1, "name": "a"}]`, `[{"id": 2}]`)
	rd, err := array.NewRecordReader(idName, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Release()
	}
	defer rd.Release()
	dir := t.TempDir()
	p := filepath.Join(dir, "out.arrow")
	rows, err := Write(context.Background(), p, rd)
	if err != nil || rows != 2 {
		t.Fatalf("Write: %d rows, %v", rows, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files in the folder, want 1", len(ents))
	}
	f, err := Open(p, Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := f.Rows(context.Background()); n != 2 || err != nil || !f.Schema().Equal(idName) {
		t.Errorf("read back %d rows of %s, %v", n, f.Schema(), err)
	}
	if err := os.WriteFile(p+".tmp", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty, err := array.NewRecordReader(idName, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Release()
	if _, err := Write(context.Background(), p, empty); err == nil {
		t.Error("Write over a file being written succeeded")
	}
}
