package iceberg

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/lakehouse-dev/lakehouse/catalog"
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
		p    catalog.Predicate
		typ  iceberg.Type
		want string // "" when not converted
	}{
		{"int eq", catalog.Predicate{Column: "c", Op: "=", Values: []catalog.Literal{{Type: "INTEGER", Text: "5"}}}, iceberg.PrimitiveTypes.Int64, "Equal"},
		{"int32 out of range", catalog.Predicate{Column: "c", Op: "=", Values: []catalog.Literal{{Type: "BIGINT", Text: "3000000000"}}}, iceberg.PrimitiveTypes.Int32, ""},
		{"decimal on int", catalog.Predicate{Column: "c", Op: "<", Values: []catalog.Literal{{Type: "DECIMAL", Text: "15", Scale: 1}}}, iceberg.PrimitiveTypes.Int64, ""},
		{"decimal on double", catalog.Predicate{Column: "c", Op: "<", Values: []catalog.Literal{{Type: "DECIMAL", Text: "15", Scale: 1}}}, iceberg.PrimitiveTypes.Float64, "LessThan"},
		{"double greater: NaN", catalog.Predicate{Column: "c", Op: ">", Values: []catalog.Literal{{Type: "INTEGER", Text: "1"}}}, iceberg.PrimitiveTypes.Float64, ""},
		{"double between: NaN", catalog.Predicate{Column: "c", Op: "between", Values: []catalog.Literal{{Type: "INTEGER", Text: "1"}, {Type: "INTEGER", Text: "2"}}}, iceberg.PrimitiveTypes.Float64, ""},
		{"double literal", catalog.Predicate{Column: "c", Op: "<", Values: []catalog.Literal{{Type: "DOUBLE", Text: "1e3"}}}, iceberg.PrimitiveTypes.Float64, ""},
		{"float32 column", catalog.Predicate{Column: "c", Op: "=", Values: []catalog.Literal{{Type: "INTEGER", Text: "1"}}}, iceberg.PrimitiveTypes.Float32, ""},
		{"string", catalog.Predicate{Column: "c", Op: "in", Values: []catalog.Literal{{Type: "VARCHAR", Text: "a"}, {Type: "VARCHAR", Text: "b"}}}, iceberg.PrimitiveTypes.String, "In"},
		{"number on string", catalog.Predicate{Column: "c", Op: "=", Values: []catalog.Literal{{Type: "INTEGER", Text: "1"}}}, iceberg.PrimitiveTypes.String, ""},
		{"date", catalog.Predicate{Column: "c", Op: ">=", Values: []catalog.Literal{{Type: "DATE", Text: "2024-01-02"}}}, iceberg.PrimitiveTypes.Date, "GreaterThanEqual"},
		{"date odd format", catalog.Predicate{Column: "c", Op: ">=", Values: []catalog.Literal{{Type: "VARCHAR", Text: "20240102"}}}, iceberg.PrimitiveTypes.Date, ""},
		{"timestamp", catalog.Predicate{Column: "c", Op: "<", Values: []catalog.Literal{{Type: "TIMESTAMP", Text: "2024-01-02 10:00:00"}}}, iceberg.PrimitiveTypes.Timestamp, "LessThan"},
		{"timestamptz with offset", catalog.Predicate{Column: "c", Op: ">=", Values: []catalog.Literal{{Type: "TIMESTAMPTZ", Text: "2024-01-02 10:00:00+00"}}}, iceberg.PrimitiveTypes.TimestampTz, "GreaterThanEqual"},
		{"timestamptz Z", catalog.Predicate{Column: "c", Op: "<", Values: []catalog.Literal{{Type: "VARCHAR", Text: "2024-01-02T10:00:00Z"}}}, iceberg.PrimitiveTypes.TimestampTz, "LessThan"},
		{"timestamptz no offset", catalog.Predicate{Column: "c", Op: "<", Values: []catalog.Literal{{Type: "TIMESTAMPTZ", Text: "2024-01-02 10:00:00"}}}, iceberg.PrimitiveTypes.TimestampTz, ""},
		{"timestamptz", catalog.Predicate{Column: "c", Op: "<", Values: []catalog.Literal{{Type: "TIMESTAMP", Text: "2024-01-02 10:00:00"}}}, iceberg.PrimitiveTypes.TimestampTz, ""},
		{"bool", catalog.Predicate{Column: "c", Op: "=", Values: []catalog.Literal{{Type: "BOOLEAN", Text: "t"}}}, iceberg.PrimitiveTypes.Bool, "Equal"},
		{"between", catalog.Predicate{Column: "c", Op: "between", Values: []catalog.Literal{{Type: "INTEGER", Text: "1"}, {Type: "INTEGER", Text: "9"}}}, iceberg.PrimitiveTypes.Int64, "And"},
		{"is null", catalog.Predicate{Column: "c", Op: "isnull"}, iceberg.DecimalTypeOf(10, 2), "IsNull"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, ok := icebergFilter(c.p, field(c.typ))
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

// TestTableScan: the catalog.TableScanner view of a table prunes with
// the predicates that translate, reports them, and prunes nothing when a
// group keeps none.
func TestTableScan(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	src := writeFile(t, dir, "tx.csv", "id,country,usd\n1,IT,1.5\n2,IT,2.5\n3,FR,10\n4,DE,20\n5,DE,30\n")
	out := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}, PartitionBy: []string{"country"}})
	ctx := context.Background()
	var scanner catalog.TableScanner = f
	s, err := scanner.OpenScan(ctx, salesIdent, out.Entry)
	if err != nil {
		t.Fatal(err)
	}
	if s.SnapshotID() != out.Entry.SnapshotID || s.SchemaEvolved() || len(s.Schema()) != 3 || s.Schema()[1].Name != "country" || s.Schema()[1].Type != "string" {
		t.Fatalf("snapshot %d, evolved %v, schema %+v", s.SnapshotID(), s.SchemaEvolved(), s.Schema())
	}
	de := catalog.Predicate{Column: "country", Op: "=", Values: []catalog.Literal{{Type: "VARCHAR", Text: "DE"}}}
	it := catalog.Predicate{Column: "country", Op: "=", Values: []catalog.Literal{{Type: "VARCHAR", Text: "IT"}}}
	nan := catalog.Predicate{Column: "usd", Op: ">", Values: []catalog.Literal{{Type: "INTEGER", Text: "15"}}}
	cases := []struct {
		name   string
		filter [][]catalog.Predicate
		files  int
		used   string
	}{
		{"none", nil, 3, "[]"},
		{"one", [][]catalog.Predicate{{de}}, 1, "[[{country = [{VARCHAR DE 0}]}]]"},
		{"untranslatable left out", [][]catalog.Predicate{{de, nan}}, 1, "[[{country = [{VARCHAR DE 0}]}]]"},
		{"or", [][]catalog.Predicate{{de}, {it}}, 2, "[[{country = [{VARCHAR DE 0}]}] [{country = [{VARCHAR IT 0}]}]]"},
		{"group without any", [][]catalog.Predicate{{de}, {nan}}, 3, "[]"},
	}
	for _, c := range cases {
		plan, err := s.PlanFiles(ctx, catalog.ScanOptions{Filter: c.filter})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(plan.Files) != c.files || plan.TotalFiles != 3 || fmt.Sprint(plan.Filter) != c.used {
			t.Errorf("%s: %d of %d files, used %v; want %d of 3, %s", c.name, len(plan.Files), plan.TotalFiles, plan.Filter, c.files, c.used)
		}
	}
}
