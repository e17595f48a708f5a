package sql

import (
	"strings"
	"time"

	"github.com/apache/iceberg-go"
)

// icebergFilter converts a simple filter on field f into an iceberg-go
// expression for file pruning. ok is false when the conversion is not
// certainly faithful to DuckDB's semantics (type coercions, time zones,
// NaN, inexact numbers): such a filter prunes nothing, DuckDB still
// applies it to the rows.
func icebergFilter(f Filter, field iceberg.NestedField) (iceberg.BooleanExpression, bool) {
	ref := iceberg.Reference(field.Name)
	switch f.Op {
	case "isnull":
		return iceberg.IsNull(ref), true
	case "notnull":
		return iceberg.NotNull(ref), true
	}
	if _, isFloat := field.Type.(iceberg.Float64Type); isFloat {
		switch f.Op {
		case ">", ">=", "<>", "between":
			// DuckDB orders NaN above every number (NaN > 1 is true);
			// Iceberg's bounds leave NaN out, so these could prune files
			// whose NaN rows DuckDB returns.
			return nil, false
		}
	}
	lits := make([]iceberg.Literal, 0, len(f.Values))
	for _, c := range f.Values {
		l, ok := literalFor(c, field.Type)
		if !ok {
			return nil, false
		}
		lits = append(lits, l)
	}
	switch f.Op {
	case "=":
		return iceberg.LiteralPredicate(iceberg.OpEQ, ref, lits[0]), true
	case "<>":
		return iceberg.LiteralPredicate(iceberg.OpNEQ, ref, lits[0]), true
	case "<":
		return iceberg.LiteralPredicate(iceberg.OpLT, ref, lits[0]), true
	case "<=":
		return iceberg.LiteralPredicate(iceberg.OpLTEQ, ref, lits[0]), true
	case ">":
		return iceberg.LiteralPredicate(iceberg.OpGT, ref, lits[0]), true
	case ">=":
		return iceberg.LiteralPredicate(iceberg.OpGTEQ, ref, lits[0]), true
	case "between":
		return iceberg.NewAnd(
			iceberg.LiteralPredicate(iceberg.OpGTEQ, ref, lits[0]),
			iceberg.LiteralPredicate(iceberg.OpLTEQ, ref, lits[1])), true
	case "in":
		return iceberg.SetPredicate(iceberg.OpIn, ref, lits), true
	}
	return nil, false
}

// literalFor converts a query constant to a literal of the column type t,
// only where DuckDB would compare the same values.
func literalFor(c Constant, t iceberg.Type) (iceberg.Literal, bool) {
	switch t.(type) {
	case iceberg.Int32Type, iceberg.Int64Type:
		n, ok := c.Int()
		if !ok {
			return nil, false
		}
		if _, is32 := t.(iceberg.Int32Type); is32 {
			if n < -1<<31 || n > 1<<31-1 {
				return nil, false
			}
			return iceberg.NewLiteral(int32(n)), true
		}
		return iceberg.NewLiteral(n), true
	case iceberg.Float64Type:
		if c.Type == "DOUBLE" || c.Type == "FLOAT" {
			return nil, false // NaN and rounding of float literals: leave to DuckDB
		}
		f, ok := c.Float()
		if !ok {
			return nil, false
		}
		return iceberg.NewLiteral(f), true
	case iceberg.StringType:
		if c.Type != "VARCHAR" {
			return nil, false
		}
		return iceberg.NewLiteral(c.Text), true
	case iceberg.BooleanType:
		if c.Type != "BOOLEAN" {
			return nil, false
		}
		switch strings.ToLower(c.Text) {
		case "t", "true":
			return iceberg.NewLiteral(true), true
		case "f", "false":
			return iceberg.NewLiteral(false), true
		}
	case iceberg.DateType:
		if c.Type != "DATE" && c.Type != "VARCHAR" {
			return nil, false
		}
		d, err := time.Parse("2006-01-02", c.Text)
		if err != nil {
			return nil, false
		}
		return iceberg.NewLiteral(iceberg.Date(d.Unix() / 86400)), true
	case iceberg.TimestampType:
		if c.Type != "TIMESTAMP" && c.Type != "DATE" && c.Type != "VARCHAR" {
			return nil, false
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999", "2006-01-02"} {
			if ts, err := time.Parse(layout, c.Text); err == nil {
				return iceberg.NewLiteral(iceberg.Timestamp(ts.UnixMicro())), true
			}
		}
	case iceberg.TimestampTzType:
		// Only with an explicit offset: otherwise DuckDB reads the
		// literal in the session's time zone.
		if c.Type != "TIMESTAMPTZ" && c.Type != "VARCHAR" {
			return nil, false
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999Z07:00", "2006-01-02T15:04:05.999999Z07:00",
			"2006-01-02 15:04:05.999999Z07", "2006-01-02T15:04:05.999999Z07"} {
			if ts, err := time.Parse(layout, c.Text); err == nil {
				return iceberg.NewLiteral(iceberg.Timestamp(ts.UnixMicro())), true
			}
		}
	}
	return nil, false
}

// renderFilter writes a filter for explain output.
func renderFilter(f Filter, column string) string {
	switch f.Op {
	case "isnull":
		return column + " IS NULL"
	case "notnull":
		return column + " IS NOT NULL"
	case "between":
		return column + " BETWEEN " + f.Values[0].String() + " AND " + f.Values[1].String()
	case "in":
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			vals[i] = v.String()
		}
		return column + " IN (" + strings.Join(vals, ", ") + ")"
	}
	return column + " " + f.Op + " " + f.Values[0].String()
}

// displayIdent renders an identifier for explain output: plain when it is
// a lower-case word, double-quoted otherwise.
func displayIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
