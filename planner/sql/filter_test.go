package sql

import (
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
)

// TestIcebergFilter: constants convert only where DuckDB compares the same
// values; anything else prunes nothing.
func TestIcebergFilter(t *testing.T) {
	t.Parallel()
	field := func(typ iceberg.Type) iceberg.NestedField {
		return iceberg.NestedField{ID: 1, Name: "c", Type: typ}
	}
	cases := []struct {
		name string
		f    Filter
		typ  iceberg.Type
		want string // "" when not converted
	}{
		{"int eq", Filter{Column: "c", Op: "=", Values: []Constant{{Type: "INTEGER", Text: "5"}}}, iceberg.PrimitiveTypes.Int64, "Equal"},
		{"int32 out of range", Filter{Column: "c", Op: "=", Values: []Constant{{Type: "BIGINT", Text: "3000000000"}}}, iceberg.PrimitiveTypes.Int32, ""},
		{"decimal on int", Filter{Column: "c", Op: "<", Values: []Constant{{Type: "DECIMAL", Text: "15", Scale: 1}}}, iceberg.PrimitiveTypes.Int64, ""},
		{"decimal on double", Filter{Column: "c", Op: "<", Values: []Constant{{Type: "DECIMAL", Text: "15", Scale: 1}}}, iceberg.PrimitiveTypes.Float64, "LessThan"},
		{"double greater: NaN", Filter{Column: "c", Op: ">", Values: []Constant{{Type: "INTEGER", Text: "1"}}}, iceberg.PrimitiveTypes.Float64, ""},
		{"double between: NaN", Filter{Column: "c", Op: "between", Values: []Constant{{Type: "INTEGER", Text: "1"}, {Type: "INTEGER", Text: "2"}}}, iceberg.PrimitiveTypes.Float64, ""},
		{"double literal", Filter{Column: "c", Op: "<", Values: []Constant{{Type: "DOUBLE", Text: "1e3"}}}, iceberg.PrimitiveTypes.Float64, ""},
		{"float32 column", Filter{Column: "c", Op: "=", Values: []Constant{{Type: "INTEGER", Text: "1"}}}, iceberg.PrimitiveTypes.Float32, ""},
		{"string", Filter{Column: "c", Op: "in", Values: []Constant{{Type: "VARCHAR", Text: "a"}, {Type: "VARCHAR", Text: "b"}}}, iceberg.PrimitiveTypes.String, "In"},
		{"number on string", Filter{Column: "c", Op: "=", Values: []Constant{{Type: "INTEGER", Text: "1"}}}, iceberg.PrimitiveTypes.String, ""},
		{"date", Filter{Column: "c", Op: ">=", Values: []Constant{{Type: "DATE", Text: "2024-01-02"}}}, iceberg.PrimitiveTypes.Date, "GreaterThanEqual"},
		{"date odd format", Filter{Column: "c", Op: ">=", Values: []Constant{{Type: "VARCHAR", Text: "20240102"}}}, iceberg.PrimitiveTypes.Date, ""},
		{"timestamp", Filter{Column: "c", Op: "<", Values: []Constant{{Type: "TIMESTAMP", Text: "2024-01-02 10:00:00"}}}, iceberg.PrimitiveTypes.Timestamp, "LessThan"},
		{"timestamptz with offset", Filter{Column: "c", Op: ">=", Values: []Constant{{Type: "TIMESTAMPTZ", Text: "2024-01-02 10:00:00+00"}}}, iceberg.PrimitiveTypes.TimestampTz, "GreaterThanEqual"},
		{"timestamptz Z", Filter{Column: "c", Op: "<", Values: []Constant{{Type: "VARCHAR", Text: "2024-01-02T10:00:00Z"}}}, iceberg.PrimitiveTypes.TimestampTz, "LessThan"},
		{"timestamptz no offset", Filter{Column: "c", Op: "<", Values: []Constant{{Type: "TIMESTAMPTZ", Text: "2024-01-02 10:00:00"}}}, iceberg.PrimitiveTypes.TimestampTz, ""},
		{"timestamptz", Filter{Column: "c", Op: "<", Values: []Constant{{Type: "TIMESTAMP", Text: "2024-01-02 10:00:00"}}}, iceberg.PrimitiveTypes.TimestampTz, ""},
		{"bool", Filter{Column: "c", Op: "=", Values: []Constant{{Type: "BOOLEAN", Text: "t"}}}, iceberg.PrimitiveTypes.Bool, "Equal"},
		{"between", Filter{Column: "c", Op: "between", Values: []Constant{{Type: "INTEGER", Text: "1"}, {Type: "INTEGER", Text: "9"}}}, iceberg.PrimitiveTypes.Int64, "And"},
		{"is null", Filter{Column: "c", Op: "isnull"}, iceberg.DecimalTypeOf(10, 2), "IsNull"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, ok := icebergFilter(c.f, field(c.typ))
			switch {
			case c.want == "" && ok:
				t.Fatalf("converted to %v; want no conversion", e)
			case c.want != "" && !ok:
				t.Fatalf("not converted; want %s", c.want)
			case ok && !strings.Contains(e.String(), c.want):
				t.Fatalf("%v does not contain %s", e, c.want)
			}
		})
	}
}

func TestSyntaxErrorPosition(t *testing.T) {
	t.Parallel()
	sql := "SELECT a,\n  b FROM t WHER x"
	e := &SyntaxError{Msg: `syntax error at or near "x"`, Pos: strings.Index(sql, "x"), SQL: sql}
	want := "syntax error at or near \"x\" (line 2, column 17)\n    b FROM t WHER x\n                  ^"
	if e.Error() != want {
		t.Fatalf("got\n%s\nwant\n%s", e.Error(), want)
	}
	long := strings.Repeat("a ", 500) + "!" + strings.Repeat(" b", 500)
	e = &SyntaxError{Msg: "bad", Pos: strings.Index(long, "!"), SQL: long}
	if lines := strings.Split(e.Error(), "\n"); len(lines) != 3 || len(lines[1]) > 130 || !strings.HasSuffix(lines[2], "^") {
		t.Fatalf("long line rendered as %q", e.Error())
	}
}
