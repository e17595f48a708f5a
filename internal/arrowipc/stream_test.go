package arrowipc

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// TestStreamFile: every seed read in place, sent message by message
// (File.Message) and written by a StreamFile, is the same table, and the
// file StreamFile writes is one File opens and reads.
func TestStreamFile(t *testing.T) {
	dir := t.TempDir()
	copied := map[string]bool{}
	t.Cleanup(func() {
		if !copied["narrow"] || !copied["nested"] {
			t.Errorf("copied %v: want the narrow and nested seeds at least", copied)
		}
	})
	for name, data := range ipctest.Seeds(t) {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(dir, name+".arrow")
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if !f.InPlace() {
				return // sent batch by batch, decoded (flight's streamFile)
			}
			dst := filepath.Join(dir, name+".copy.arrow")
			w, err := CreateStreamFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			p := ipc.GetSchemaPayload(f.Schema(), memory.DefaultAllocator)
			err = w.Write(p.Meta().Bytes(), nil, 0)
			p.Release()
			for i := 0; err == nil && i < f.NumBatches(); i++ {
				var header, body []byte
				if header, body, err = f.Message(i); err == nil {
					// The body in pieces, as the transport holds it.
					pieces := [][]byte{body[:len(body)/3], body[len(body)/3:]}
					err = w.Write(header, pieces, int64(len(body)))
				}
			}
			if err != nil {
				w.Abort()
				t.Fatal(err)
			}
			rows, err := w.Close(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			g, err := Open(dst, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			want, wantRows, err := f.Fingerprint(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got, gotRows, err := g.Fingerprint(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			copied[name] = true
			if got != want || gotRows != wantRows || rows != wantRows || !g.Schema().Equal(f.Schema()) {
				t.Fatalf("copy: %s, %d rows (%d written), schema %s; want %s, %d rows, %s", got, gotRows, rows, g.Schema(), want, wantRows, f.Schema())
			}
		})
	}
}

// FuzzStreamFile writes arbitrary messages (a schema, then a batch whose
// body lies in two pieces) into a StreamFile: each is refused with an
// error of class InvalidArgument, or the file it writes is one every
// reader reads or refuses with a classified error, without a crash.
func FuzzStreamFile(f *testing.F) {
	for name, data := range ipctest.Seeds(f) {
		path := filepath.Join(f.TempDir(), name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			f.Fatal(err)
		}
		src, err := Open(path, Options{})
		if err != nil {
			f.Fatal(err)
		}
		if src.InPlace() && src.NumBatches() > 0 {
			p := ipc.GetSchemaPayload(src.Schema(), memory.DefaultAllocator)
			header, body, err := src.Message(0)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(append([]byte(nil), p.Meta().Bytes()...), append([]byte(nil), header...), append([]byte(nil), body...), uint16(len(body)/2))
			p.Release()
		}
		src.Close()
	}
	f.Fuzz(func(t *testing.T, schema, header, body []byte, cut uint16) {
		dir := t.TempDir()
		dst := filepath.Join(dir, "out.arrow")
		w, err := CreateStreamFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		k := min(int(cut), len(body))
		err = w.Write(schema, nil, 0)
		if err == nil {
			err = w.Write(header, [][]byte{body[:k], body[k:]}, int64(len(body)))
		}
		if err != nil {
			w.Abort()
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("refused with %v, not InvalidArgument", err)
			}
			return
		}
		if _, err := w.Close(context.Background()); err != nil {
			if errdefs.Class(err) == errdefs.ErrInternal {
				t.Fatalf("unclassed error: %v", err)
			}
			return
		}
		if err := readAll(dst, memory.NewGoAllocator()); err != nil && errdefs.Class(err) == errdefs.ErrInternal {
			t.Fatalf("unclassed error reading what was written: %v", err)
		}
	})
}

// TestCheckSchema: a stored schema (Parquet's ARROW:schema) is checked
// before arrow-go reads it; one whose message claims a body, or whose
// fields cannot fit its bytes, is refused.
func TestCheckSchema(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	if err := CheckSchema(good); err != nil {
		t.Fatalf("a valid schema: %v", err)
	}
	// Without the continuation marker (streams before Arrow 0.15).
	if err := CheckSchema(good[4:]); err != nil {
		t.Errorf("a valid schema without continuation marker: %v", err)
	}
	huge := binary.LittleEndian.AppendUint32([]byte{0xff, 0xff, 0xff, 0xff}, uint32(len(ipctest.HugeSchema)))
	huge = append(huge, ipctest.HugeSchema...)
	for name, b := range map[string][]byte{
		"empty":      nil,
		"truncated":  good[:len(good)/2],
		"huge count": huge,
	} {
		if err := CheckSchema(b); !errdefs.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
