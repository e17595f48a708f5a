package iceberg

import (
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
)

// CSV value types: the lattice type inference walks and the parsers that
// turn CSV text into Arrow values. Inference and parsing use the same
// functions, so a column typed by the first pass always parses in the second.

// csvType is a type a CSV value can be parsed as.
type csvType uint8

const (
	csvLong csvType = iota
	csvDouble
	csvBool
	csvDate
	csvTimestamp
	csvTimestampTz
	csvString
	numCSVTypes
)

// csvTypeSet is a set of csvTypes.
type csvTypeSet uint8

const allCSVTypes = csvTypeSet(1<<numCSVTypes - 1)

func (s csvTypeSet) has(t csvType) bool { return s&(1<<t) != 0 }

// best is the preferred type of the set: the first in declaration order.
func (s csvTypeSet) best() csvType {
	for t := csvLong; t < numCSVTypes; t++ {
		if s.has(t) {
			return t
		}
	}
	return csvString
}

var csvIcebergTypes = [numCSVTypes]iceberg.Type{
	csvLong:        iceberg.PrimitiveTypes.Int64,
	csvDouble:      iceberg.PrimitiveTypes.Float64,
	csvBool:        iceberg.PrimitiveTypes.Bool,
	csvDate:        iceberg.PrimitiveTypes.Date,
	csvTimestamp:   iceberg.PrimitiveTypes.Timestamp,
	csvTimestampTz: iceberg.PrimitiveTypes.TimestampTz,
	csvString:      iceberg.PrimitiveTypes.String,
}

// csvTypeFor returns the CSV type that parses values of Iceberg type t.
func csvTypeFor(t iceberg.Type) (csvType, bool) {
	for ct, it := range csvIcebergTypes {
		if it.Equals(t) {
			return csvType(ct), true
		}
	}
	return 0, false
}

// csvTypesOf returns the set of types v parses as.
func csvTypesOf(v string, within csvTypeSet) csvTypeSet {
	out := csvTypeSet(1 << csvString)
	c := v[0]
	if within.has(csvLong) && (c >= '0' && c <= '9' || c == '-' || c == '+') {
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			return (out | 1<<csvLong | 1<<csvDouble) & within
		}
	}
	if within.has(csvDouble) {
		if _, err := parseCSVDouble(v); err == nil {
			out |= 1 << csvDouble
		}
	}
	if within.has(csvBool) {
		if _, err := parseCSVBool(v); err == nil {
			out |= 1 << csvBool
		}
	}
	if len(v) >= 10 && v[4] == '-' && within&(1<<csvDate|1<<csvTimestamp|1<<csvTimestampTz) != 0 {
		if within.has(csvDate) {
			if _, err := parseCSVDate(v); err == nil {
				out |= 1 << csvDate
			}
		}
		if _, zone, err := arrow.TimestampFromStringInLocation(v, arrow.Microsecond, time.UTC); err == nil {
			if zone {
				out |= 1 << csvTimestampTz
			} else {
				out |= 1 << csvTimestamp
			}
		}
	}
	return out & within
}

func parseCSVDouble(v string) (float64, error) {
	// ParseFloat also takes hex floats and "inf"/"nan" spelled many ways;
	// accept only what looks like a decimal number or the usual NaN/Inf.
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9', c == '.', c == '-', c == '+', c == 'e', c == 'E':
		default:
			switch strings.ToLower(v) {
			case "nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity":
				return strconv.ParseFloat(v, 64)
			}
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseFloat(v, 64)
}

func parseCSVBool(v string) (bool, error) {
	switch {
	case strings.EqualFold(v, "true"):
		return true, nil
	case strings.EqualFold(v, "false"):
		return false, nil
	}
	return false, strconv.ErrSyntax
}

func parseCSVDate(v string) (arrow.Date32, error) {
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		return 0, err
	}
	return arrow.Date32FromTime(t), nil
}

// csvParser returns a function appending a CSV value to bld ("" is NULL).
func csvParser(bld array.Builder) func(string) error {
	switch b := bld.(type) {
	case *array.Int64Builder:
		return func(v string) error {
			if v == "" {
				b.AppendNull()
				return nil
			}
			n, err := strconv.ParseInt(v, 10, 64)
			b.Append(n)
			return err
		}
	case *array.Float64Builder:
		return func(v string) error {
			if v == "" {
				b.AppendNull()
				return nil
			}
			n, err := parseCSVDouble(v)
			b.Append(n)
			return err
		}
	case *array.BooleanBuilder:
		return func(v string) error {
			if v == "" {
				b.AppendNull()
				return nil
			}
			x, err := parseCSVBool(v)
			b.Append(x)
			return err
		}
	case *array.Date32Builder:
		return func(v string) error {
			if v == "" {
				b.AppendNull()
				return nil
			}
			d, err := parseCSVDate(v)
			b.Append(d)
			return err
		}
	case *array.TimestampBuilder:
		tz := b.Type().(*arrow.TimestampType).TimeZone != ""
		return func(v string) error {
			if v == "" {
				b.AppendNull()
				return nil
			}
			ts, zone, err := arrow.TimestampFromStringInLocation(v, arrow.Microsecond, time.UTC)
			b.Append(ts)
			if err == nil && zone != tz {
				err = strconv.ErrSyntax
			}
			return err
		}
	case *array.StringBuilder:
		return func(v string) error {
			if v == "" {
				b.AppendNull()
				return nil
			}
			b.Append(v)
			return nil
		}
	}
	// A table type CSV values never parse as: the column was all empty.
	return func(v string) error {
		bld.AppendNull()
		if v != "" {
			return strconv.ErrSyntax
		}
		return nil
	}
}

func truncateValue(v string) string {
	const max = 64
	if len(v) <= max {
		return v
	}
	return v[:max] + "…"
}
