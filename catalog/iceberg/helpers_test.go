package iceberg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/warehousetest"
)

var salesIdent = catalog.TableIdent{Namespace: "sales", Name: "transactions"}

// newTestFormat returns a Format over a fresh warehouse (local, or on S3
// in the S3 mode) whose imports
// allocate from a checked allocator that must be empty when the test ends.
func newTestFormat(t *testing.T) *Format {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	opts := Options{Warehouse: filepath.Join(t.TempDir(), "wh"), Allocator: mem, BatchRows: 1000}
	if warehousetest.S3 {
		opts = Options{Storage: testStorage(t), CacheDir: t.TempDir(), Allocator: mem, BatchRows: 1000}
	}
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// col is one column of a test record: a name, a type and its values (nil
// for NULL).
type col struct {
	name string
	typ  arrow.DataType
	vals []any
}

// buildRecord builds a record from columns with mem.
func buildRecord(t *testing.T, mem memory.Allocator, cols ...col) arrow.RecordBatch {
	t.Helper()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.typ, Nullable: true}
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i, c := range cols {
		fb := b.Field(i)
		for _, v := range c.vals {
			if v == nil {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int64Builder:
				fb.Append(int64(v.(int)))
			case *array.Uint64Builder:
				fb.Append(v.(uint64))
			case *array.Int32Builder:
				fb.Append(int32(v.(int)))
			case *array.Float64Builder:
				fb.Append(v.(float64))
			case *array.Float32Builder:
				fb.Append(float32(v.(float64)))
			case *array.StringBuilder:
				fb.Append(v.(string))
			case *array.LargeStringBuilder:
				fb.Append(v.(string))
			case *array.BinaryDictionaryBuilder:
				if err := fb.AppendString(v.(string)); err != nil {
					t.Fatal(err)
				}
			case *array.BooleanBuilder:
				fb.Append(v.(bool))
			case *array.Date32Builder:
				d, err := parseCSVDate(v.(string))
				if err != nil {
					t.Fatal(err)
				}
				fb.Append(d)
			case *array.TimestampBuilder:
				ts, _, err := arrow.TimestampFromStringInLocation(v.(string), fb.Type().(*arrow.TimestampType).Unit, time.UTC)
				if err != nil {
					t.Fatal(err)
				}
				fb.Append(ts)
			default:
				t.Fatalf("buildRecord: unsupported builder %T", fb)
			}
		}
	}
	return b.NewRecordBatch()
}

// writeParquet writes columns as a Parquet file built with a checked
// allocator.
func writeParquet(t *testing.T, dir, name string, cols ...col) string {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := buildRecord(t, mem, cols...)
	defer rec.Release()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, parquet.NewWriterProperties(parquet.WithAllocator(mem)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(mem), pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// scan reads a table state with iceberg-go's own scan, through a plain
// iceberg-go file system (the warehouse's on S3), and returns its rows rendered as "a|b|c" lines,
// sorted, over the named columns.
func scan(t *testing.T, e catalog.TableEntry, cols ...string) []string {
	t.Helper()
	ctx := context.Background()
	fs := testFS(t, e.MetadataLocation)
	tbl, err := table.NewFromLocation(ctx, tableIdent(salesIdent), e.MetadataLocation,
		func(context.Context) (iceio.IO, error) { return fs, nil }, nil)
	if err != nil {
		t.Fatalf("loading %s with iceberg-go: %v", e.MetadataLocation, err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("scanning: %v", err)
	}
	defer at.Release()
	var idx []int
	for _, c := range cols {
		ix := at.Schema().FieldIndices(c)
		if len(ix) != 1 {
			t.Fatalf("column %q not in scanned schema %s", c, at.Schema())
		}
		idx = append(idx, ix[0])
	}
	var rows []string
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for r := 0; r < int(rec.NumRows()); r++ {
			parts := make([]string, len(idx))
			for i, c := range idx {
				parts[i] = rec.Column(c).ValueStr(r)
			}
			rows = append(rows, strings.Join(parts, "|"))
		}
	}
	sort.Strings(rows)
	return rows
}

func mustImport(t *testing.T, f *Format, spec catalog.ImportSpec) *catalog.ImportOutcome {
	t.Helper()
	if spec.Ident == (catalog.TableIdent{}) {
		spec.Ident = salesIdent
	}
	out, err := f.Import(context.Background(), spec)
	if err != nil {
		t.Fatalf("import %v: %v", spec.Sources, err)
	}
	return out
}

func describe(t *testing.T, f *Format, e catalog.TableEntry) *catalog.TableInfo {
	t.Helper()
	info, err := f.Describe(context.Background(), salesIdent, e)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func eqStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// schemaString renders a table's columns as "name:type name:type".
func schemaString(info *catalog.TableInfo) string {
	var out []string
	for _, c := range info.Schema {
		out = append(out, c.Name+":"+c.Type)
	}
	return strings.Join(out, " ")
}
