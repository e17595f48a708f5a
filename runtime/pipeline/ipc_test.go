package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// writeDictFile writes an IPC file with a dictionary-encoded column, as
// pandas writes a categorical.
func writeDictFile(t *testing.T, path string) {
	t.Helper()
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "c", Type: dt}}, nil)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i, v := range []string{"it", "fr", "it"} {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if err := b.Field(1).(*array.BinaryDictionaryBuilder).AppendString(v); err != nil {
			t.Fatal(err)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkReaders checks that every reader of run files reads the file at
// path of 3 rows: its fingerprint, its preview (which must contain
// shown) and SQL, whose query must count want.
func checkReaders(t *testing.T, path, shown, query string, want int64) {
	t.Helper()
	fp, rows, err := fingerprint(path)
	if err != nil || rows != 3 || fp == "" {
		t.Fatalf("fingerprint: %q %d %v", fp, rows, err)
	}
	text, err := preview(path, 5, rows)
	if err != nil || !strings.Contains(text, shown) {
		t.Fatalf("preview: %q %v", text, err)
	}
	db, err := sqlDB(context.Background(), "m", 0, map[string]string{"input": path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rd, err := db.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() || rd.RecordBatch().Column(0).(*array.Int64).Value(0) != want {
		t.Fatalf("%s: %v", query, rd.Err())
	}
}

// TestMappedDictionary: every reader of run files handles dictionary
// columns (arrow-go's mapped reader panics on them).
func TestMappedDictionary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dict.arrow")
	writeDictFile(t, path)
	checkReaders(t, path, "fr", "SELECT count(*) FILTER (WHERE c = 'it') AS n FROM input", 2)
}

// TestMappedCorrupt: a damaged output is an error, not a crash.
func TestMappedCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.arrow")
	writeDictFile(t, path)
	b, _ := os.ReadFile(path)
	for i := 16; i < len(b)-16; i++ {
		b[i] ^= 0x5a
	}
	os.WriteFile(path, b, 0o644)
	if _, _, err := fingerprint(path); !errdefs.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("fingerprint of a damaged file: %v, want an invalid argument", err)
	}
	if _, err := preview(path, 5, 3); !errdefs.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("preview of a damaged file: %v, want an invalid argument", err)
	}
	if db, err := sqlDB(context.Background(), "m", 0, map[string]string{"input": path}); err == nil {
		db.Close()
		t.Fatal("loading a damaged file succeeded")
	}
}

// TestNestedOutput: outputs with list, struct and map columns (pandas and
// polars frames carry them) are fingerprinted, previewed and read by SQL.
func TestNestedOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested.arrow")
	if err := os.WriteFile(path, ipctest.Seeds(t)["nested"], 0o644); err != nil {
		t.Fatal(err)
	}
	checkReaders(t, path, "tags", "SELECT sum(len(tags))::BIGINT AS n FROM input", 2)
}

// TestCachePutConcurrent: runs storing the same key at once (two
// terminals, same project) each leave a whole entry, never a mix.
func TestCachePutConcurrent(t *testing.T) {
	dir := t.TempDir()
	c := &resultCache{dir: filepath.Join(dir, "cache"), max: 1 << 30, maxEntry: 1 << 30}
	var srcs [][]byte
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		src := filepath.Join(dir, fmt.Sprintf("out%d.arrow", i))
		data := bytes.Repeat([]byte{byte('a' + i)}, (1<<20)+i*4096)
		srcs = append(srcs, data)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.put("k", src, cacheMeta{Run: fmt.Sprint(i)})
		}()
	}
	wg.Wait()
	got, err := os.ReadFile(filepath.Join(c.dir, "k.arrow"))
	if err != nil {
		t.Fatal(err)
	}
	whole := false
	for _, s := range srcs {
		whole = whole || bytes.Equal(got, s)
	}
	if !whole {
		t.Fatalf("cache entry of %d bytes is a mix of several outputs", len(got))
	}
	ents, _ := os.ReadDir(c.dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestPreviewText: cells stay on one line, long ones are cut on a
// character (not inside a UTF-8 sequence), and columns line up by
// characters.
func TestPreviewText(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "city", Type: arrow.BinaryTypes.String}, {Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i, v := range []string{"Zürich", "two\nlines", strings.Repeat("é", 60)} {
		b.Field(0).(*array.StringBuilder).Append(v)
		b.Field(1).(*array.Int64Builder).Append(int64(i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "p.arrow")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
	text, err := preview(path, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 4 || !utf8.ValidString(text) || !strings.Contains(text, `two\nlines`) || !strings.Contains(text, strings.Repeat("é", 39)+"…") {
		t.Fatalf("preview:\n%s", text)
	}
	col := strings.Index(lines[0], "n")
	for _, l := range lines[1:] {
		if r := []rune(l); len(r) <= utf8.RuneCountInString(lines[0][:col]) || r[utf8.RuneCountInString(lines[0][:col])] < '0' || r[utf8.RuneCountInString(lines[0][:col])] > '9' {
			t.Errorf("column n does not line up:\n%s", text)
		}
	}
}
