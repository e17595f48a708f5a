package iceberg

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// CSV import. A CSV file is read twice: a first pass checks its syntax
// (quotes, field counts) and infers each column's type from every value;
// the second pass parses the values into Arrow batches of the table's
// schema. Both passes stream: memory is bounded by one record (at most
// maxCSVRecordBytes) plus one batch.
//
// Type inference uses the types of arrow-go's inferring CSV reader (int64,
// float64, bool, date32, timestamp, string), but looks at every value, not
// only the first row as csv.NewInferringReader does: a column gets the first
// of long, double, boolean, date, timestamp, timestamptz, string that all its
// non-empty values parse as. An empty field is NULL. A column that is empty
// throughout fits any table type (and is a string in a new table).

// maxCSVRecordBytes bounds one CSV record (a line, or several when a quoted
// field spans lines). An unbalanced quote otherwise makes the parser read to
// the end of the file into one field.
const maxCSVRecordBytes = 64 << 20

// csvBatchBytes flushes a batch early when its text exceeds this size.
const csvBatchBytes = 32 << 20

// csvFile is an open CSV file with the guards every pass uses.
type csvFile struct {
	path string
	f    *os.File
	lr   *limitedRecordReader
	r    *csv.Reader
	// line is the line the last record read started on.
	line int
}

func openCSV(path string, limit int64) (*csvFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	lr := &limitedRecordReader{r: bufio.NewReaderSize(f, 1<<16), limit: limit}
	r := csv.NewReader(lr)
	r.ReuseRecord = true
	lr.offset = r.InputOffset
	return &csvFile{path: path, f: f, lr: lr, r: r}, nil
}

func (c *csvFile) Close() error { return c.f.Close() }

// read returns the next record, io.EOF at the end, or an error that names
// the file and line.
func (c *csvFile) read() ([]string, error) {
	rec, err := c.r.Read()
	if err == nil {
		c.line, _ = c.r.FieldPos(0)
		c.lr.recordDone()
		return rec, nil
	}
	if err == io.EOF {
		return nil, io.EOF
	}
	var pe *csv.ParseError
	switch {
	case errors.Is(err, errCSVRecordTooLarge):
		return nil, errdefs.New(errdefs.ErrInvalidArgument,
			"file %s: the record after line %d is longer than %s (is a quote unbalanced?)",
			c.path, c.line, byteSize(c.lr.limit))
	case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
		return nil, errdefs.New(errdefs.ErrInvalidArgument,
			"file %s: line %d has %d fields but the header has %d", c.path, pe.StartLine, len(rec), c.r.FieldsPerRecord)
	case errors.As(err, &pe) && pe.StartLine != pe.Line:
		return nil, errdefs.New(errdefs.ErrInvalidArgument,
			"file %s: the record starting on line %d: line %d, column %d: %v", c.path, pe.StartLine, pe.Line, pe.Column, pe.Err)
	case errors.As(err, &pe):
		return nil, errdefs.New(errdefs.ErrInvalidArgument,
			"file %s: line %d, column %d: %v", c.path, pe.Line, pe.Column, pe.Err)
	}
	return nil, fmt.Errorf("file %s: reading after line %d: %w", c.path, c.line, err)
}

// header reads and checks the header row.
func (c *csvFile) header() ([]string, error) {
	rec, err := c.read()
	if err == io.EOF {
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "a CSV file starts with a header row naming its columns",
			"file %s is empty", c.path)
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, len(rec))
	seen := make(map[string]bool, len(rec))
	for i, n := range rec {
		if i == 0 {
			n = strings.TrimPrefix(n, "\ufeff") // UTF-8 byte order mark
		}
		switch {
		case n == "":
			return nil, errdefs.New(errdefs.ErrInvalidArgument,
				"file %s: column %d of the header row has no name", c.path, i+1)
		case !utf8.ValidString(n):
			return nil, errdefs.New(errdefs.ErrInvalidArgument,
				"file %s: column %d of the header row is not valid UTF-8", c.path, i+1)
		case seen[n]:
			return nil, errdefs.New(errdefs.ErrInvalidArgument,
				"file %s: the header row names column %q twice", c.path, n)
		}
		seen[n] = true
		names[i] = n
	}
	return names, nil
}

// csvProbe is what the first pass learns about a CSV file.
type csvProbe struct {
	cols []fileColumn
	rows int64
}

// probeCSV reads a whole CSV file once, checking its syntax and inferring
// its column types.
func probeCSV(ctx context.Context, path string, limit int64) (*csvProbe, error) {
	c, err := openCSV(path, limit)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return probeCSVRecords(ctx, c, path)
}

// csvRecords is where the CSV passes read records: a CSV file, or the
// text columns of a staged upload of one.
type csvRecords interface {
	// header returns the column names.
	header() ([]string, error)
	// read returns the next record, io.EOF at the end.
	read() ([]string, error)
	// lineNo is the line the last record read started on.
	lineNo() int
}

func (c *csvFile) lineNo() int { return c.line }

// probeCSVRecords checks the records of c, the file path, and infers each
// column's types from every value.
func probeCSVRecords(ctx context.Context, c csvRecords, path string) (*csvProbe, error) {
	names, err := c.header()
	if err != nil {
		return nil, err
	}
	sets := make([]csvTypeSet, len(names))
	seen := make([]bool, len(names))
	for i := range sets {
		sets[i] = allCSVTypes
	}
	var rows int64
	for {
		rec, err := c.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if rows++; rows%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		for i, v := range rec {
			if v == "" {
				continue
			}
			if !utf8.ValidString(v) {
				return nil, errdefs.New(errdefs.ErrInvalidArgument,
					"file %s: line %d, column %q: the value is not valid UTF-8", path, c.lineNo(), names[i])
			}
			seen[i] = true
			if sets[i] != 1<<csvString {
				sets[i] = csvTypesOf(v, sets[i])
			}
		}
	}
	if rows == 0 {
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "import needs at least one row to infer column types",
			"file %s has a header row but no data rows", path)
	}
	p := &csvProbe{rows: rows, cols: make([]fileColumn, len(names))}
	for i, n := range names {
		col := fileColumn{name: n, csv: sets[i], fieldID: -1, allNull: !seen[i]}
		if seen[i] {
			col.typ = csvIcebergTypes[sets[i].best()]
		}
		p.cols[i] = col
	}
	return p, nil
}

// csvBatches streams a CSV file as batches of schema. colOf maps each
// schema field to its column in the file. The caller releases each batch.
func csvBatches(ctx context.Context, mem memory.Allocator, path string, limit int64, schema *arrow.Schema, colOf []int, batchRows int,
	yield func(arrow.RecordBatch) error) error {
	c, err := openCSV(path, limit)
	if err != nil {
		return err
	}
	defer c.Close()
	return csvRecordBatches(ctx, mem, c, path, schema, colOf, batchRows, yield)
}

// csvRecordBatches parses the records of c, the file path, into batches
// of schema (see csvBatches).
func csvRecordBatches(ctx context.Context, mem memory.Allocator, c csvRecords, path string, schema *arrow.Schema, colOf []int, batchRows int,
	yield func(arrow.RecordBatch) error) error {
	names, err := c.header()
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	parsers := make([]func(string) error, schema.NumFields())
	for i := range parsers {
		parsers[i] = csvParser(b.Field(i))
	}
	rows, text := 0, 0
	flush := func() error {
		rec := b.NewRecordBatch()
		rows, text = 0, 0
		return yield(rec)
	}
	for {
		rec, err := c.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		for i, p := range parsers {
			v := rec[colOf[i]]
			text += len(v)
			if err := p(v); err != nil {
				return errdefs.New(errdefs.ErrInvalidArgument, "file %s: line %d, column %q: cannot parse %q as %s",
					path, c.lineNo(), names[colOf[i]], truncateValue(v), schema.Field(i).Type)
			}
		}
		if rows++; rows >= batchRows || text >= csvBatchBytes {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if rows > 0 {
		return flush()
	}
	return nil
}

// byteSize renders n bytes for a person.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

var errCSVRecordTooLarge = errors.New("csv record too large")

// limitedRecordReader fails a read once the CSV parser has taken more than
// limit bytes past the end of the last complete record.
type limitedRecordReader struct {
	r      io.Reader
	limit  int64
	read   int64 // bytes handed to the parser
	offset func() int64
	start  int64 // offset at the end of the last record
}

func (l *limitedRecordReader) Read(p []byte) (int, error) {
	if l.read-l.start > l.limit {
		return 0, errCSVRecordTooLarge
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

func (l *limitedRecordReader) recordDone() { l.start = l.offset() }
