package scancache

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/zeebo/xxh3"
)

// dirSource serves the files of a directory as objects, counting what it
// reads. Its ETag is a hash of the content. Faults are injected with the
// fields below.
type dirSource struct {
	dir      string
	bytes    atomic.Int64
	requests atomic.Int64
	stats    atomic.Int64

	mu sync.Mutex
	// extra is added to every Stat size (an object shorter than claimed).
	extra int64
	// afterRead runs after each ReadRange opens (e.g. to replace the
	// object mid-fetch).
	afterRead func()
	// etags memoizes content hashes by key, size and mtime.
	etags map[string]string
}

var _ Source = (*dirSource)(nil)

func (s *dirSource) Stat(ctx context.Context, key string) (int64, string, error) {
	s.stats.Add(1)
	path := filepath.Join(s.dir, key)
	fi, err := os.Stat(path)
	if err != nil {
		return 0, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	memo := fmt.Sprint(key, fi.Size(), fi.ModTime().UnixNano())
	if s.etags == nil {
		s.etags = map[string]string{}
	}
	etag, ok := s.etags[memo]
	if !ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, "", err
		}
		etag = strconv.FormatUint(xxh3.Hash(b), 16)
		s.etags[memo] = etag
	}
	return fi.Size() + s.extra, etag, nil
}

func (s *dirSource) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(s.dir, key))
	if err != nil {
		return nil, err
	}
	s.requests.Add(1)
	s.mu.Lock()
	after := s.afterRead
	s.mu.Unlock()
	if after != nil {
		after()
	}
	return &countingReader{r: io.NewSectionReader(f, off, n), f: f, n: &s.bytes}, nil
}

func (s *dirSource) reset() { s.bytes.Store(0); s.requests.Store(0); s.stats.Store(0) }

type countingReader struct {
	r io.Reader
	f *os.File
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.f.Close() }

// testColumns are the columns of writeArrowParquet's files.
var testColumns = []string{"id", "name", "note", "price", "big", "tags", "s", "f", "flag", "day", "m"}

// writeArrowParquet writes rows generated from seed with arrow-go's pqarrow
// writer, rowGroup rows per row group, dictionary encoding, page indexes
// and bloom filters on "id", and returns the file's size.
func writeArrowParquet(t testing.TB, path string, rows, rowGroup int, seed uint64) int64 {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String},
		{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "price", Type: &arrow.Decimal128Type{Precision: 18, Scale: 2}},
		{Name: "big", Type: &arrow.Decimal128Type{Precision: 38, Scale: 10}, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "s", Type: arrow.StructOf(
			arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64},
		{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32},
		{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32), Nullable: true},
	}, nil)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	props := parquet.NewWriterProperties(
		parquet.WithMaxRowGroupLength(int64(rowGroup)),
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(true),
		parquet.WithPageIndexEnabledFor("id", true),
		parquet.WithBloomFilterEnabledFor("id", true),
		parquet.WithBloomFilterNDVFor("id", int64(rowGroup)),
		parquet.WithDataPageSize(8<<10),
	)
	w, err := pqarrow.NewFileWriter(schema, out, props, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	names := []string{"alpha", "beta", "gamma", "delta", "epsilon", "ζήτα", ""}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for start := 0; start < rows; start += rowGroup {
		n := min(rowGroup, rows-start)
		for i := start; i < start+n; i++ {
			b.Field(0).(*array.Int64Builder).Append(int64(i))
			b.Field(1).(*array.StringBuilder).Append(names[rng.IntN(len(names))])
			if rng.IntN(7) == 0 {
				b.Field(2).AppendNull()
			} else {
				b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("note %d %x", i, rng.Uint64()))
			}
			b.Field(3).(*array.Decimal128Builder).Append(decimal128.FromI64(rng.Int64N(10_000_000) - 5_000_000))
			if rng.IntN(5) == 0 {
				b.Field(4).AppendNull()
			} else {
				b.Field(4).(*array.Decimal128Builder).Append(decimal128.New(rng.Int64N(1<<40), rng.Uint64()))
			}
			lb := b.Field(5).(*array.ListBuilder)
			if rng.IntN(6) == 0 {
				lb.AppendNull()
			} else {
				lb.Append(true)
				for k := rng.IntN(4); k > 0; k-- {
					lb.ValueBuilder().(*array.StringBuilder).Append(names[rng.IntN(len(names))])
				}
			}
			sb := b.Field(6).(*array.StructBuilder)
			if rng.IntN(8) == 0 {
				sb.AppendNull()
			} else {
				sb.Append(true)
				sb.FieldBuilder(0).(*array.Int32Builder).Append(rng.Int32())
				sb.FieldBuilder(1).(*array.StringBuilder).Append(strings.Repeat("x", rng.IntN(20)))
			}
			b.Field(7).(*array.Float64Builder).Append(rng.NormFloat64())
			if rng.IntN(9) == 0 {
				b.Field(8).AppendNull()
			} else {
				b.Field(8).(*array.BooleanBuilder).Append(rng.IntN(2) == 0)
			}
			b.Field(9).(*array.Date32Builder).Append(arrow.Date32(18000 + rng.IntN(3000)))
			mb := b.Field(10).(*array.MapBuilder)
			if rng.IntN(10) == 0 {
				mb.AppendNull()
			} else {
				mb.Append(true)
				for k := rng.IntN(3); k > 0; k-- {
					mb.KeyBuilder().(*array.StringBuilder).Append(fmt.Sprintf("k%d", k))
					mb.ItemBuilder().(*array.Int32Builder).Append(rng.Int32N(100))
				}
			}
		}
		rec := b.NewRecordBatch()
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// poison overwrites every byte of the entry's data file that its sidecar
// does not record with 0xA5, so a reader that strays into a hole reads
// garbage, not zeros that might happen to decode.
func poison(t testing.TB, c *Cache, localPath string) {
	t.Helper()
	id := strings.TrimSuffix(filepath.Base(localPath), extData)
	sc, err := loadSidecar(c.path(id, extSidecar))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(localPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	holes := subtract([]span{{0, sc.Size}}, normalize(sc.spans()))
	for _, h := range holes {
		b := make([]byte, h.Len)
		for i := range b {
			b[i] = 0xA5
		}
		if _, err := f.WriteAt(b, h.Off); err != nil {
			t.Fatal(err)
		}
	}
}

func openCache(t testing.TB, max int64) *Cache {
	t.Helper()
	c, err := Open(t.TempDir(), max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
