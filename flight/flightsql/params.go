package flightsql

import (
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// readParams reads the parameters a client binds: at most one row, turned
// into SQL literals in column order. No rows (or no columns) is no
// parameters.
func readParams(r arrowflight.MessageReader) ([]string, error) {
	var params []string
	rows := int64(0)
	for r.Next() {
		b := r.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		rows += b.NumRows()
		if rows > 1 {
			return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "bind one row of parameters and execute once per row",
				"a prepared query takes one row of parameters at a time, not %d", rows)
		}
		params = make([]string, b.NumCols())
		for i, col := range b.Columns() {
			lit, err := literal(col, 0)
			if err != nil {
				return nil, errdefs.New(errdefs.ErrInvalidArgument, "parameter %d (%s): %v", i+1, b.ColumnName(i), err)
			}
			params[i] = lit
		}
	}
	if err := r.Err(); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "reading the parameters: %v", err)
	}
	return params, nil
}

// literal is value i of a as a SQL literal.
func literal(a arrow.Array, i int) (string, error) {
	if a.IsNull(i) {
		return "NULL", nil
	}
	switch a := a.(type) {
	case *array.Int8, *array.Int16, *array.Int32, *array.Int64,
		*array.Uint8, *array.Uint16, *array.Uint32, *array.Uint64:
		return a.ValueStr(i), nil
	case *array.Float32:
		return float(float64(a.Value(i)), 32), nil
	case *array.Float64:
		return float(a.Value(i), 64), nil
	case *array.Boolean:
		if a.Value(i) {
			return "TRUE", nil
		}
		return "FALSE", nil
	case *array.String:
		return quote(a.Value(i)), nil
	case *array.LargeString:
		return quote(a.Value(i)), nil
	case *array.StringView:
		return quote(a.Value(i)), nil
	case *array.Decimal128, *array.Decimal256:
		return a.ValueStr(i), nil
	case *array.Date32, *array.Date64:
		return "DATE " + quote(a.ValueStr(i)), nil
	case *array.Timestamp:
		t := a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit)
		if a.DataType().(*arrow.TimestampType).TimeZone != "" {
			return "TIMESTAMPTZ " + quote(t.UTC().Format("2006-01-02 15:04:05.999999999+00")), nil
		}
		return "TIMESTAMP " + quote(t.UTC().Format("2006-01-02 15:04:05.999999999")), nil
	case *array.DenseUnion:
		// ADBC binds a column of mixed values as a dense union.
		return literal(a.Field(a.ChildID(i)), int(a.ValueOffset(i)))
	case *array.SparseUnion:
		return literal(a.Field(a.ChildID(i)), i)
	}
	return "", errdefs.WithHint(errdefs.ErrInvalidArgument, "bind numbers, strings, booleans, dates, timestamps or nulls",
		"parameters of type %s are not supported", a.DataType())
}

func float(v float64, bits int) string {
	switch {
	case math.IsNaN(v):
		return "'NaN'::DOUBLE"
	case math.IsInf(v, 1):
		return "'Infinity'::DOUBLE"
	case math.IsInf(v, -1):
		return "'-Infinity'::DOUBLE"
	}
	return strconv.FormatFloat(v, 'g', -1, bits) + "::DOUBLE"
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// scan calls hole with the offset of every ? placeholder of sql outside
// string literals, quoted identifiers and comments.
func scan(sql string, hole func(at int)) error {
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '\'' || c == '"':
			end := strings.IndexByte(sql[i+1:], c)
			for end >= 0 && i+1+end+1 < len(sql) && sql[i+1+end+1] == c { // doubled quote
				i += end + 2
				end = strings.IndexByte(sql[i+1:], c)
			}
			if end < 0 {
				return errdefs.New(errdefs.ErrInvalidArgument, "unterminated %c quote in the statement", c)
			}
			i += end + 1
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				return nil
			}
			i += end
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return errdefs.New(errdefs.ErrInvalidArgument, "unterminated /* comment in the statement")
			}
			i += end + 3
		case c == '?':
			hole(i)
		}
	}
	return nil
}

// placeholders counts the ? of sql.
func placeholders(sql string) (int, error) {
	n := 0
	err := scan(sql, func(int) { n++ })
	return n, err
}

// bind puts params in place of the placeholders of sql, in order.
func bind(sql string, params []string) (string, error) {
	var holes []int
	if err := scan(sql, func(at int) { holes = append(holes, at) }); err != nil {
		return "", err
	}
	if len(holes) != len(params) {
		return "", errdefs.WithHint(errdefs.ErrInvalidArgument, "bind one value per ? of the statement",
			"the statement has %d parameters and %d are bound", len(holes), len(params))
	}
	var b strings.Builder
	last := 0
	for k, at := range holes {
		b.WriteString(sql[last:at])
		b.WriteString(params[k])
		last = at + 1
	}
	b.WriteString(sql[last:])
	return b.String(), nil
}
