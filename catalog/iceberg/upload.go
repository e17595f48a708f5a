package iceberg

import (
	"context"
	"io"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Imports through a server. The client reads its local files into Arrow
// batches and sends them; the server stages each as an Arrow IPC file and
// imports the staged files (catalog.StagedSource). So that an import gives
// the same table, the same errors and the same skipping on both sides, the
// client resolves and checks its files with the code of a local import
// (ExpandSources, ReadLocalFile), and a CSV file travels as its text: the
// server infers and parses the column types from it exactly as it would
// from the file (kindCSVText).

// LocalFile is a local file an import reads, as ExpandSources finds it.
type LocalFile struct{ src sourceFile }

// Path is the file's absolute path: the name the import gives it.
func (f LocalFile) Path() string { return f.src.Path }

// Size is the file's size when it was found.
func (f LocalFile) Size() int64 { return f.src.Size }

// MtimeNs is the file's modification time when it was found.
func (f LocalFile) MtimeNs() int64 { return f.src.MtimeNs }

// Format is the catalog.StagedSource.Format of the file's upload.
func (f LocalFile) Format() string {
	if f.src.kind == kindCSV {
		return catalog.StagedCSV
	}
	return ""
}

// ExpandSources resolves the sources of an import (files, directories,
// globs) into files, in order, without duplicates, as a local import does
// (same errors).
func ExpandSources(sources []string) ([]LocalFile, error) {
	files, err := expandSources(sources)
	if err != nil {
		return nil, err
	}
	out := make([]LocalFile, len(files))
	for i, f := range files {
		out[i] = LocalFile{src: f}
	}
	return out, nil
}

// ReadLocalFile reads f for an upload. It first checks the file as a local
// import does (a Parquet footer, an Arrow IPC file's structure, a CSV
// file's syntax, every value valid UTF-8), with the same errors, then calls
// start with the schema of the batches and yield with each batch of at
// most batchRows rows, which yield releases. Parquet and Arrow IPC files
// keep their own types; a CSV file becomes string columns of its fields
// (NULL for an empty field), for the server to type (Format says so). It
// fails with ErrConflict if the file changed while it was read.
func ReadLocalFile(ctx context.Context, mem memory.Allocator, f LocalFile, batchRows int,
	start func(*arrow.Schema) error, yield func(arrow.RecordBatch) error) error {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	if batchRows <= 0 {
		batchRows = DefaultBatchRows
	}
	src := f.src
	switch src.kind {
	case kindParquet:
		p, err := probeParquet(src.file, src.fileSize)
		if err != nil {
			return err
		}
		if err := start(p.schema); err != nil {
			return err
		}
		if err := parquetBatches(ctx, mem, src.file, p.schema, identity(p.schema.NumFields()), batchRows, yield); err != nil {
			return err
		}
	case kindIPC:
		p, err := probeIPC(ctx, src.file, src.fileSize, mem)
		if err != nil {
			return err
		}
		if err := start(p.schema); err != nil {
			return err
		}
		if err := ipcBatches(ctx, mem, src.file, src.fileSize, p.schema, identity(p.schema.NumFields()), batchRows, yield); err != nil {
			return err
		}
	default:
		if _, err := probeCSV(ctx, src.file, maxCSVRecordBytes); err != nil {
			return err
		}
		if err := csvText(ctx, mem, src.file, batchRows, start, yield); err != nil {
			return err
		}
	}
	return checkUnchanged(src)
}

func identity(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// csvText streams the fields of a CSV file (checked by probeCSV) as
// batches of string columns named by its header.
func csvText(ctx context.Context, mem memory.Allocator, path string, batchRows int,
	start func(*arrow.Schema) error, yield func(arrow.RecordBatch) error) error {
	c, err := openCSV(path, maxCSVRecordBytes)
	if err != nil {
		return err
	}
	defer c.Close()
	names, err := c.header()
	if err != nil {
		return err
	}
	fields := make([]arrow.Field, len(names))
	for i, n := range names {
		fields[i] = arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	if err := start(schema); err != nil {
		return err
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	cols := make([]*array.StringBuilder, len(names))
	for i := range cols {
		cols[i] = b.Field(i).(*array.StringBuilder)
	}
	rows, text := 0, 0
	for {
		rec, err := c.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		for i, v := range rec {
			if v == "" {
				cols[i].AppendNull()
			} else {
				cols[i].Append(v)
				text += len(v)
			}
		}
		if rows++; rows >= batchRows || text >= csvBatchBytes {
			if err := ctx.Err(); err != nil {
				return err
			}
			rows, text = 0, 0
			if err := yield(b.NewRecordBatch()); err != nil {
				return err
			}
		}
	}
	if rows > 0 {
		return yield(b.NewRecordBatch())
	}
	return nil
}

// textColumn is a string or large string array.
type textColumn interface {
	IsNull(i int) bool
	Value(i int) string
}

// csvTextFile reads the records of a staged CSV upload: an Arrow IPC file
// of string columns, one per CSV column, NULL for an empty field.
type csvTextFile struct {
	name  string
	f     *arrowipc.File
	batch arrow.RecordBatch
	cols  []textColumn
	next  int // batch to read next
	row   int // row of batch to read next
	rows  int // records read
	rec   []string
}

func openCSVText(path, name string, mem memory.Allocator) (*csvTextFile, error) {
	f, err := arrowipc.Open(path, arrowipc.Options{Allocator: mem})
	if err != nil {
		return nil, err
	}
	return &csvTextFile{name: name, f: f}, nil
}

func (c *csvTextFile) Close() error {
	c.release()
	return c.f.Close()
}

func (c *csvTextFile) release() {
	if c.batch != nil {
		c.batch.Release()
		c.batch, c.cols = nil, nil
	}
}

// header checks that every column is text and returns the names.
func (c *csvTextFile) header() ([]string, error) {
	sc := c.f.Schema()
	names := make([]string, sc.NumFields())
	seen := make(map[string]bool, len(names))
	for i, fd := range sc.Fields() {
		switch {
		case fd.Type.ID() != arrow.STRING && fd.Type.ID() != arrow.LARGE_STRING:
			return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "send a CSV file's fields as string columns, or send typed columns without the csv format",
				"upload of %s: column %q is %s, not the text of a CSV field", c.name, fd.Name, fd.Type)
		case fd.Name == "" || !utf8.ValidString(fd.Name):
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "file %s: column %d of the header row has no valid name", c.name, i+1)
		case seen[fd.Name]:
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "file %s: the header row names column %q twice", c.name, fd.Name)
		}
		seen[fd.Name] = true
		names[i] = fd.Name
	}
	c.rec = make([]string, len(names))
	return names, nil
}

func (c *csvTextFile) read() ([]string, error) {
	for c.batch == nil || c.row >= int(c.batch.NumRows()) {
		c.release()
		if c.next >= c.f.NumBatches() {
			return nil, io.EOF
		}
		b, err := c.f.Batch(c.next)
		if err != nil {
			return nil, err
		}
		c.next++
		c.batch, c.row = b, 0
		c.cols = make([]textColumn, b.NumCols())
		for i := range c.cols {
			col, ok := b.Column(i).(textColumn)
			if !ok {
				return nil, errdefs.New(errdefs.ErrInvalidArgument, "upload of %s: column %q is %s, not the text of a CSV field",
					c.name, b.ColumnName(i), b.Column(i).DataType())
			}
			c.cols[i] = col
		}
	}
	for i, col := range c.cols {
		if col.IsNull(c.row) {
			c.rec[i] = ""
		} else {
			c.rec[i] = col.Value(c.row)
		}
	}
	c.row++
	c.rows++
	return c.rec, nil
}

// lineNo counts the header as line 1 and each record as one line.
func (c *csvTextFile) lineNo() int { return c.rows + 1 }

// probeCSVText infers the column types of a staged CSV upload, as
// probeCSV does for the file; name is the client's file.
func probeCSVText(ctx context.Context, path, name string, mem memory.Allocator) (*csvProbe, error) {
	c, err := openCSVText(path, name, mem)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return probeCSVRecords(ctx, c, name)
}

// csvTextBatches parses a staged CSV upload into batches of schema, as
// csvBatches does for the file.
func csvTextBatches(ctx context.Context, mem memory.Allocator, path, name string, schema *arrow.Schema, colOf []int, batchRows int,
	yield func(arrow.RecordBatch) error) error {
	c, err := openCSVText(path, name, mem)
	if err != nil {
		return err
	}
	defer c.Close()
	return csvRecordBatches(ctx, mem, c, name, schema, colOf, batchRows, yield)
}
