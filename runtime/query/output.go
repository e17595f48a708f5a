package query

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
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
	FormatArrow   = "arrow"  // Arrow IPC file (Feather v2): pyarrow.ipc.open_file, pyarrow.feather
	FormatArrows  = "arrows" // Arrow IPC stream: pyarrow.ipc.open_stream
)

// Formats lists the formats Write accepts.
var Formats = []string{FormatCSV, FormatJSON, FormatJSONL, FormatParquet, FormatArrow, FormatArrows}

// How values that a format has no exact type for are written (docs/cli.md
// repeats this):
//   - decimals: JSON strings with every digit ("12345678901234567890.123456789");
//     CSV fields the same.
//   - timestamps: RFC 3339 with a T. A timestamp with a time zone is written
//     in UTC with a Z ("2024-01-02T01:04:05.5Z"); one without a zone has no
//     offset ("2024-01-02T03:04:05.123456"), which pandas and DuckDB read back
//     as a naive timestamp, as it was.
//   - intervals: in JSON an object {"months", "days", "nanoseconds"}; in
//     Parquet a struct<months: int32, days: int32, nanoseconds: int64>
//     (Parquet's INTERVAL type holds no nanoseconds nor negative parts, and
//     pyarrow reads it as 12 opaque bytes); in CSV the JSON object as text.
//   - CSV: NULL is an empty field, the empty string a quoted one ("").

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
		// The file format is written front to back (batches as they come,
		// the footer at close), so it needs no seekable target.
		fw, err := ipc.NewFileWriter(bw, ipc.WithSchema(r.Schema()))
		if err != nil {
			return WriteStats{}, fmt.Errorf("arrow output: %w", err)
		}
		sink = &arrowSink{w: fw}
	case FormatArrows:
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

type parquetSink struct {
	w         *pqarrow.FileWriter
	schema    *arrow.Schema // as written: intervals are structs
	intervals []int         // columns that are month_day_nano intervals
}

// intervalStruct is how Parquet output holds a month_day_nano interval.
// Its fields are nullable (never null in a non-null struct) as in the
// files DuckDB writes for ExportParquet, whose Parquet writer has no
// required fields.
var intervalStruct = arrow.StructOf(
	arrow.Field{Name: "months", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	arrow.Field{Name: "days", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	arrow.Field{Name: "nanoseconds", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
)

func newParquetSink(w io.Writer, schema *arrow.Schema) (*parquetSink, error) {
	s := &parquetSink{schema: schema}
	fields := schema.Fields()
	for i, f := range fields {
		if f.Type.ID() == arrow.INTERVAL_MONTH_DAY_NANO {
			s.intervals = append(s.intervals, i)
			fields[i].Type = intervalStruct
		}
	}
	if s.intervals != nil {
		md := schema.Metadata()
		s.schema = arrow.NewSchema(fields, &md)
	}
	fw, err := pqarrow.NewFileWriter(s.schema, w,
		parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy),
			parquet.WithMaxRowGroupLength(ParquetRowGroupRows)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("parquet output: %w", err)
	}
	s.w = fw
	return s, nil
}

func (s *parquetSink) write(rec arrow.RecordBatch) error {
	if s.intervals == nil {
		return s.w.WriteBuffered(rec)
	}
	cols := slices.Clone(rec.Columns())
	for _, i := range s.intervals {
		cols[i] = intervalsAsStruct(cols[i].(*array.MonthDayNanoInterval))
		defer cols[i].Release()
	}
	out := array.NewRecordBatch(s.schema, cols, rec.NumRows())
	defer out.Release()
	return s.w.WriteBuffered(out)
}

func (s *parquetSink) close() error { return s.w.Close() }

// intervalsAsStruct is a as an intervalStruct array.
func intervalsAsStruct(a *array.MonthDayNanoInterval) arrow.Array {
	b := array.NewStructBuilder(memory.DefaultAllocator, intervalStruct)
	defer b.Release()
	months := b.FieldBuilder(0).(*array.Int32Builder)
	days := b.FieldBuilder(1).(*array.Int32Builder)
	nanos := b.FieldBuilder(2).(*array.Int64Builder)
	b.Reserve(a.Len())
	for i := 0; i < a.Len(); i++ {
		if a.IsNull(i) {
			b.AppendNull()
			continue
		}
		v := a.Value(i)
		b.Append(true)
		months.Append(v.Months)
		days.Append(v.Days)
		nanos.Append(v.Nanoseconds)
	}
	return b.NewArray()
}

// ipcWriter is an Arrow IPC file or stream writer.
type ipcWriter interface {
	Write(arrow.RecordBatch) error
	Close() error
}

type arrowSink struct{ w ipcWriter }

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
			case *array.Timestamp:
				b = appendRFC3339(b, a, i)
			case *array.Decimal32, *array.Decimal64, *array.Decimal128, *array.Decimal256:
				b = append(b, decimalText(c, i)...)
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
		return true // "" is the empty string, an empty field NULL
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
	case arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
		return decimalText(c, i) // a string: JSON readers make numbers floats
	case arrow.TIMESTAMP:
		return string(appendRFC3339(nil, c.(*array.Timestamp), i))
	case arrow.DATE32, arrow.DATE64, arrow.TIME32, arrow.TIME64:
		return FormatValue(c, i)
	}
	return c.GetOneForMarshal(i)
}

// decimalText is a decimal cell with every digit of its scale.
func decimalText(c arrow.Array, i int) string {
	scale := c.DataType().(arrow.DecimalType).GetScale()
	switch a := c.(type) {
	case *array.Decimal32:
		return a.Value(i).ToString(scale)
	case *array.Decimal64:
		return a.Value(i).ToString(scale)
	case *array.Decimal128:
		return a.Value(i).ToString(scale)
	case *array.Decimal256:
		return a.Value(i).ToString(scale)
	}
	return c.ValueStr(i)
}

// appendRFC3339 appends a timestamp cell in RFC 3339 with a T: in UTC with
// a Z when its type has a time zone, with no offset when it has none.
func appendRFC3339(b []byte, a *array.Timestamp, i int) []byte {
	typ := a.DataType().(*arrow.TimestampType)
	t := a.Value(i).ToTime(typ.Unit)
	if typ.TimeZone == "" {
		return t.AppendFormat(b, "2006-01-02T15:04:05.999999999")
	}
	return t.UTC().AppendFormat(b, "2006-01-02T15:04:05.999999999Z")
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
	if e, ok := c.(array.ExtensionArray); ok {
		// An extension type (DuckDB's varint, as a server sends it) may
		// not render itself: its storage does.
		if s, ok := extensionText(e, i); ok {
			return s
		}
		return FormatValue(e.Storage(), i)
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

// extensionText is an extension array's own text of row i, if it has one
// (arrow-go's base panics for a type that does not).
func extensionText(e array.ExtensionArray, i int) (s string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return strings.TrimSuffix(e.ValueStr(i), "\n"), true
}

// elapsed renders a duration in seconds with milliseconds: "0.012 s".
func elapsed(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// Elapsed is elapsed, exported for the CLI footer.
func Elapsed(d time.Duration) string { return elapsed(d) }
