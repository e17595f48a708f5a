package query

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Formats a result can be written in by Write.
const (
	FormatCSV     = "csv"
	FormatJSON    = "json"  // one JSON array of row objects
	FormatJSONL   = "jsonl" // one JSON object per line
	FormatParquet = "parquet"
	FormatArrow   = "arrow" // Arrow IPC stream
)

// Formats lists the formats Write accepts.
var Formats = []string{FormatCSV, FormatJSON, FormatJSONL, FormatParquet, FormatArrow}

// WriteStats reports what Write wrote.
type WriteStats struct {
	Rows int64
}

// Write streams the rows of r to w in format, at most limit rows (limit
// < 0: all). Memory stays bounded by a few batches (Parquet: one row
// group of at most ParquetRowGroupRows rows).
func Write(w io.Writer, r array.RecordReader, format string, limit int64) (WriteStats, error) {
	var sink batchSink
	bw := bufio.NewWriterSize(w, 1<<20)
	switch format {
	case FormatCSV:
		sink = newCSVSink(bw, r.Schema())
	case FormatJSON:
		sink = &jsonSink{w: bw, array: true}
	case FormatJSONL:
		sink = &jsonSink{w: bw}
	case FormatParquet:
		s, err := newParquetSink(bw, r.Schema())
		if err != nil {
			return WriteStats{}, err
		}
		sink = s
	case FormatArrow:
		sink = &arrowSink{w: ipc.NewWriter(bw, ipc.WithSchema(r.Schema()))}
	default:
		return WriteStats{}, fmt.Errorf("unknown output format %q", format)
	}
	var st WriteStats
	batches, errc, stop := prefetch(r, 4)
	defer stop()
	for rec := range batches {
		if limit >= 0 && st.Rows >= limit {
			rec.Release()
			continue // drain what was fetched; stop() ends the reader
		}
		if limit >= 0 && st.Rows+rec.NumRows() > limit {
			cut := rec.NewSlice(0, limit-st.Rows)
			rec.Release()
			rec = cut
		}
		err := sink.write(rec)
		st.Rows += rec.NumRows()
		rec.Release()
		if err != nil {
			return st, err
		}
		if limit >= 0 && st.Rows >= limit {
			stop()
		}
	}
	if err := <-errc; err != nil {
		return st, err
	}
	if err := sink.close(); err != nil {
		return st, err
	}
	return st, bw.Flush()
}

// prefetch reads batches of r in a goroutine, up to depth ahead of the
// consumer, so that DuckDB's work and the writer's overlap. Each batch is
// retained for the consumer, who releases it. stop ends the reading early
// and waits for the goroutine; errc yields r's error once batches closes.
func prefetch(r array.RecordReader, depth int) (batches <-chan arrow.RecordBatch, errc <-chan error, stop func()) {
	out := make(chan arrow.RecordBatch, depth)
	ec := make(chan error, 1)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for r.Next() {
			rec := r.RecordBatch()
			rec.Retain()
			select {
			case out <- rec:
			case <-quit:
				rec.Release()
				ec <- nil
				return
			}
		}
		ec <- r.Err()
	}()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		close(quit)
		for rec := range out { // unblock the goroutine and free what it fetched
			rec.Release()
		}
		<-done
	}
	return out, ec, stop
}

type batchSink interface {
	write(arrow.RecordBatch) error
	close() error
}

// ParquetRowGroupRows is the row group size of Parquet output.
const ParquetRowGroupRows = 256 * 1024

type parquetSink struct{ w *pqarrow.FileWriter }

func newParquetSink(w io.Writer, schema *arrow.Schema) (*parquetSink, error) {
	fw, err := pqarrow.NewFileWriter(schema, w,
		parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy),
			parquet.WithMaxRowGroupLength(ParquetRowGroupRows)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("parquet output: %w", err)
	}
	return &parquetSink{w: fw}, nil
}

func (s *parquetSink) write(rec arrow.RecordBatch) error { return s.w.WriteBuffered(rec) }
func (s *parquetSink) close() error                      { return s.w.Close() }

type arrowSink struct{ w *ipc.Writer }

func (s *arrowSink) write(rec arrow.RecordBatch) error { return s.w.Write(rec) }
func (s *arrowSink) close() error                      { return s.w.Close() }

// csvSink writes RFC 4180 CSV: a header, then one line per row; nulls are
// empty fields; fields with a comma, quote, line break or leading space
// are quoted. Cells are appended straight to one buffer per batch.
type csvSink struct {
	w      io.Writer
	header []string
	buf    []byte
	dates  map[arrow.Date32][]byte
}

func newCSVSink(w io.Writer, schema *arrow.Schema) *csvSink {
	s := &csvSink{w: w, dates: map[arrow.Date32][]byte{}}
	for _, f := range schema.Fields() {
		s.header = append(s.header, f.Name)
	}
	return s
}

func (s *csvSink) writeHeader() error {
	if s.header == nil {
		return nil
	}
	b := s.buf[:0]
	for i, h := range s.header {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVString(b, h)
	}
	b = append(b, '\n')
	s.header = nil
	_, err := s.w.Write(b)
	return err
}

func (s *csvSink) write(rec arrow.RecordBatch) error {
	if err := s.writeHeader(); err != nil {
		return err
	}
	cols := rec.Columns()
	b := s.buf[:0]
	for i := 0; i < int(rec.NumRows()); i++ {
		for j, c := range cols {
			if j > 0 {
				b = append(b, ',')
			}
			if c.IsNull(i) {
				continue
			}
			switch a := c.(type) {
			case *array.Int64:
				b = strconv.AppendInt(b, a.Value(i), 10)
			case *array.Int32:
				b = strconv.AppendInt(b, int64(a.Value(i)), 10)
			case *array.Float64:
				b = strconv.AppendFloat(b, a.Value(i), 'g', -1, 64)
			case *array.String:
				b = appendCSVString(b, a.Value(i))
			case *array.Date32:
				d := a.Value(i)
				txt, ok := s.dates[d]
				if !ok {
					txt = []byte(d.ToTime().Format("2006-01-02"))
					if len(s.dates) < 1<<16 {
						s.dates[d] = txt
					}
				}
				b = append(b, txt...)
			default:
				b = appendCSVString(b, FormatValue(c, i))
			}
		}
		b = append(b, '\n')
	}
	s.buf = b
	_, err := s.w.Write(b)
	return err
}

// appendCSVString appends a field, quoted when it needs to be.
func appendCSVString(b []byte, v string) []byte {
	if !csvNeedsQuotes(v) {
		return append(b, v...)
	}
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, v[i])
	}
	return append(b, '"')
}

func csvNeedsQuotes(v string) bool {
	if v == "" {
		return false
	}
	if v[0] == ' ' || v[0] == '\t' || v == `\.` {
		return true
	}
	return strings.ContainsAny(v, ",\"\r\n")
}

func (s *csvSink) close() error { return s.writeHeader() }

type jsonSink struct {
	w     *bufio.Writer
	array bool
	n     int64
}

func (s *jsonSink) write(rec arrow.RecordBatch) error {
	names := make([][]byte, rec.NumCols())
	for j, f := range rec.Schema().Fields() {
		b, _ := json.Marshal(f.Name)
		names[j] = b
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		switch {
		case s.array && s.n == 0:
			s.w.WriteString("[\n  ")
		case s.array:
			s.w.WriteString(",\n  ")
		}
		s.w.WriteByte('{')
		for j, c := range rec.Columns() {
			if j > 0 {
				s.w.WriteByte(',')
			}
			s.w.Write(names[j])
			s.w.WriteByte(':')
			b, err := json.Marshal(jsonValue(c, i))
			if err != nil {
				return err
			}
			s.w.Write(b)
		}
		s.w.WriteByte('}')
		if !s.array {
			s.w.WriteByte('\n')
		}
		s.n++
	}
	return nil
}

func (s *jsonSink) close() error {
	if !s.array {
		return nil
	}
	if s.n == 0 {
		_, err := s.w.WriteString("[]\n")
		return err
	}
	_, err := s.w.WriteString("\n]\n")
	return err
}

// jsonValue is a cell as a JSON-encodable value.
func jsonValue(c arrow.Array, i int) any {
	if c.IsNull(i) {
		return nil
	}
	switch a := c.(type) {
	case *array.Float64:
		if v := a.Value(i); math.IsNaN(v) || math.IsInf(v, 0) {
			return FormatValue(c, i)
		}
	case *array.Float32:
		if v := float64(a.Value(i)); math.IsNaN(v) || math.IsInf(v, 0) {
			return FormatValue(c, i)
		}
	case *array.Int64, *array.Int32, *array.Int16, *array.Int8, *array.Uint64, *array.Uint32,
		*array.Uint16, *array.Uint8, *array.Boolean:
		return c.GetOneForMarshal(i)
	case *array.String, *array.LargeString, *array.StringView:
		return FormatValue(c, i)
	}
	switch c.DataType().ID() {
	case arrow.FLOAT64, arrow.FLOAT32:
		return json.Number(FormatValue(c, i))
	case arrow.DECIMAL128, arrow.DECIMAL256:
		return json.Number(FormatValue(c, i))
	case arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP, arrow.TIME32, arrow.TIME64:
		return FormatValue(c, i)
	}
	return c.GetOneForMarshal(i)
}

// TableCell keeps a cell of a text table on one line (newlines and tabs
// escaped) and at most width characters (an ellipsis ends a cut one).
func TableCell(s string, width int) string {
	s = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
	if utf8.RuneCountInString(s) > width {
		r := []rune(s)
		s = string(r[:width-1]) + "…"
	}
	return s
}

// FormatValue renders one cell as text: "" for null, dates as
// 2006-01-02, timestamps as 2006-01-02 15:04:05[.ffffff][Z], floats in
// their shortest exact form.
func FormatValue(c arrow.Array, i int) string {
	if c.IsNull(i) {
		return ""
	}
	switch a := c.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.StringView:
		return a.Value(i)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Float32:
		return strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Date32:
		return a.Value(i).ToTime().Format("2006-01-02")
	case *array.Timestamp:
		typ := a.DataType().(*arrow.TimestampType)
		t := a.Value(i).ToTime(typ.Unit)
		s := t.Format("2006-01-02 15:04:05.999999999")
		if typ.TimeZone != "" {
			s = t.UTC().Format("2006-01-02 15:04:05.999999999") + "Z"
		}
		return s
	case *array.Decimal128:
		typ := a.DataType().(*arrow.Decimal128Type)
		return a.Value(i).ToString(typ.Scale)
	}
	s := c.ValueStr(i)
	return strings.TrimSuffix(s, "\n")
}

// elapsed renders a duration in seconds with milliseconds: "0.012 s".
func elapsed(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// Elapsed is elapsed, exported for the CLI footer.
func Elapsed(d time.Duration) string { return elapsed(d) }
