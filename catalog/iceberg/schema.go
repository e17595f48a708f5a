package iceberg

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// fileColumn is one column of a source file as the import sees it.
type fileColumn struct {
	name string
	// typ is the Iceberg type the column maps to: the type a new table gets.
	typ iceberg.Type
	// allNull marks a column without any value (Arrow null type, or a CSV
	// column whose every field is empty); it fits any table type.
	allNull bool
	// csv is the set of types every value of a CSV column parses as (nil
	// for Parquet and Arrow IPC).
	csv csvTypeSet
	// arrow is the column's Arrow type (Parquet and Arrow IPC).
	arrow arrow.DataType
	// fieldID is the Parquet field id, or -1.
	fieldID int
}

// icebergTypeOf maps an Arrow type of a source file to the Iceberg type a
// table column gets from it. ok is false for types import does not support
// (nested types, intervals, float16, huge decimals...).
func icebergTypeOf(dt arrow.DataType) (iceberg.Type, bool) {
	switch dt.ID() {
	case arrow.BOOL:
		return iceberg.PrimitiveTypes.Bool, true
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.UINT8, arrow.UINT16:
		return iceberg.PrimitiveTypes.Int32, true
	case arrow.INT64, arrow.UINT32, arrow.UINT64:
		return iceberg.PrimitiveTypes.Int64, true
	case arrow.FLOAT32:
		return iceberg.PrimitiveTypes.Float32, true
	case arrow.FLOAT64:
		return iceberg.PrimitiveTypes.Float64, true
	case arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128:
		d := dt.(arrow.DecimalType)
		p, s := int(d.GetPrecision()), int(d.GetScale())
		if p < 1 || p > 38 || s < 0 || s > p {
			return nil, false
		}
		return iceberg.DecimalTypeOf(p, s), true
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return iceberg.PrimitiveTypes.String, true
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW:
		return iceberg.PrimitiveTypes.Binary, true
	case arrow.FIXED_SIZE_BINARY:
		n := dt.(*arrow.FixedSizeBinaryType).ByteWidth
		if n < 1 {
			return nil, false
		}
		return iceberg.FixedTypeOf(n), true
	case arrow.DATE32, arrow.DATE64:
		return iceberg.PrimitiveTypes.Date, true
	case arrow.TIME32, arrow.TIME64:
		return iceberg.PrimitiveTypes.Time, true
	case arrow.TIMESTAMP:
		if dt.(*arrow.TimestampType).TimeZone == "" {
			return iceberg.PrimitiveTypes.Timestamp, true
		}
		return iceberg.PrimitiveTypes.TimestampTz, true
	case arrow.DICTIONARY:
		return icebergTypeOf(dt.(*arrow.DictionaryType).ValueType)
	}
	return nil, false
}

// arrowColumns returns the columns of a file with an Arrow schema (Parquet,
// Arrow IPC), refusing duplicate names and types import cannot store.
// fieldID returns a field's id in the file, or -1.
func arrowColumns(path string, sc *arrow.Schema, fieldID func(arrow.Field) int) ([]fileColumn, error) {
	cols := make([]fileColumn, 0, sc.NumFields())
	seen := map[string]bool{}
	for _, f := range sc.Fields() {
		if seen[f.Name] {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "file %s: column %q appears twice", path, f.Name)
		}
		seen[f.Name] = true
		col := fileColumn{name: f.Name, arrow: f.Type, fieldID: fieldID(f)}
		if f.Type.ID() == arrow.NULL {
			col.allNull = true
		} else if typ, ok := icebergTypeOf(f.Type); ok {
			col.typ = typ
		} else {
			return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "import supports flat columns of numbers, decimals, strings, binary, booleans, dates, times and timestamps",
				"file %s: column %q has type %s, which import does not support", path, f.Name, f.Type)
		}
		cols = append(cols, col)
	}
	return cols, nil
}

// widens reports whether a value of type from can be stored in a column of
// type to without loss: the same type, int → long, float → double, or a
// decimal of the same scale and no larger precision. (int → double is not
// allowed: Iceberg does not promote it, and a long may not fit.)
func widens(from, to iceberg.Type) bool {
	if from.Equals(to) {
		return true
	}
	switch f := from.(type) {
	case iceberg.Int32Type:
		_, ok := to.(iceberg.Int64Type)
		return ok
	case iceberg.Float32Type:
		_, ok := to.(iceberg.Float64Type)
		return ok
	case iceberg.DecimalType:
		t, ok := to.(iceberg.DecimalType)
		return ok && t.Scale() == f.Scale() && t.Precision() >= f.Precision()
	}
	return false
}

// fits reports whether column c of a file can be imported into a table
// column of type to.
func (c *fileColumn) fits(to iceberg.Type) bool {
	if c.allNull {
		return true
	}
	if c.arrow == nil { // CSV: any type every value parses as
		ct, ok := csvTypeFor(to)
		return ok && c.csv.has(ct)
	}
	return widens(c.typ, to)
}

// tableSchemaFrom builds the schema of a new table from the first file's
// columns: every column optional, ids 1..n (iceberg-go reassigns them).
func tableSchemaFrom(src string, cols []fileColumn) (*iceberg.Schema, error) {
	fields := make([]iceberg.NestedField, len(cols))
	for i, c := range cols {
		typ := c.typ
		if c.allNull && typ == nil {
			typ = iceberg.PrimitiveTypes.String
		}
		fields[i] = iceberg.NestedField{ID: i + 1, Name: c.name, Type: typ}
	}
	if len(fields) == 0 {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "file %s has no columns", src)
	}
	return iceberg.NewSchema(0, fields...), nil
}

// matchColumns maps every table column to a column of the file, checking
// that the file has exactly the table's columns (by name) with fitting
// types. It returns, per table column, the index of the file column.
func matchColumns(src string, id fmt.Stringer, sc *iceberg.Schema, cols []fileColumn) ([]int, error) {
	byName := make(map[string]int, len(cols))
	for i, c := range cols {
		byName[c.name] = i
	}
	fields := sc.Fields()
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	hint := "the table's columns are " + strings.Join(names, ", ")
	out := make([]int, len(fields))
	for i, f := range fields {
		j, ok := byName[f.Name]
		if !ok {
			return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, hint,
				"file %s: column %q of table %s is missing from the file", src, f.Name, id)
		}
		c := &cols[j]
		if !c.fits(f.Type) {
			return nil, errdefs.New(errdefs.ErrInvalidArgument,
				"file %s: column %q is %s in the file but %s in table %s", src, f.Name, c.typeName(), f.Type, id)
		}
		out[i] = j
		delete(byName, f.Name)
	}
	for _, c := range cols {
		if _, extra := byName[c.name]; extra {
			return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, hint,
				"file %s: column %q is not in table %s", src, c.name, id)
		}
	}
	return out, nil
}

// typeName is how an error names the column's type in the file.
func (c *fileColumn) typeName() string {
	if c.typ != nil {
		return c.typ.String()
	}
	if c.allNull {
		return "null"
	}
	return "unknown"
}

// arrowSchemaOf returns the Arrow schema of sc with Iceberg field ids, the
// form batches handed to iceberg-go's writer take.
func arrowSchemaOf(sc *iceberg.Schema) (*arrow.Schema, error) {
	return table.SchemaToArrowSchema(sc, nil, true, false)
}

// castTo converts arr to type to: unpacking dictionaries, widening numbers,
// truncating timestamps to microseconds. The result is a new reference.
func castTo(ctx context.Context, mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	if arrow.TypeEqual(arr.DataType(), to) {
		arr.Retain()
		return arr, nil
	}
	if arr.DataType().ID() == arrow.NULL {
		return array.MakeArrayOfNull(mem, to, arr.Len()), nil
	}
	ctx = compute.WithAllocator(ctx, mem)
	if d, ok := arr.DataType().(*arrow.DictionaryType); ok {
		plain, err := compute.CastArray(ctx, arr, compute.SafeCastOptions(d.ValueType))
		if err != nil {
			return nil, err
		}
		defer plain.Release()
		return castTo(ctx, mem, plain, to)
	}
	opts := compute.SafeCastOptions(to)
	opts.AllowTimeTruncate = true
	return compute.CastArray(ctx, arr, opts)
}
