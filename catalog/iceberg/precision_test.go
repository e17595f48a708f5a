package iceberg

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/lakehouse-dev/lakehouse/catalog"
)

// TestNanosecondWarning: a timestamp[ns] column imports to microseconds
// with one warning naming it; microsecond columns and CSV give none.
func TestNanosecondWarning(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	ns := &arrow.TimestampType{Unit: arrow.Nanosecond}
	us := &arrow.TimestampType{Unit: arrow.Microsecond}
	a := writeParquet(t, dir, "a.parquet",
		col{"fine", us, []any{"2024-01-02 03:04:05.123456"}},
		col{"cut", ns, []any{"2024-01-02 03:04:05.123456789"}})
	b := writeParquet(t, dir, "b.parquet",
		col{"fine", us, []any{"2024-01-02 03:04:05"}},
		col{"cut", ns, []any{"2024-01-02 03:04:05"}})
	out := mustImport(t, f, catalog.ImportSpec{Sources: []string{a, b}})
	if len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0], `column "cut" of `+a+` is timestamp[ns]`) {
		t.Errorf("warnings %q, want one naming column cut of %s", out.Warnings, a)
	}
	rows := scan(t, out.Entry, "cut")
	slices.Sort(rows)
	eqStrings(t, "rows", rows, []string{"2024-01-02T03:04:05", "2024-01-02T03:04:05.123456"})
	csv := mustImport(t, f, catalog.ImportSpec{Ident: catalog.TableIdent{Namespace: "default", Name: "c"},
		Sources: []string{writeFile(t, dir, "c.csv", salesCSV)}})
	if len(csv.Warnings) != 0 {
		t.Errorf("CSV import warns: %q", csv.Warnings)
	}
}

// TestNullPartitionJSON: a null partition value reads "null" as text and
// is null in JSON.
func TestNullPartitionJSON(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	p := writeParquet(t, dir, "a.parquet",
		col{"id", arrow.PrimitiveTypes.Int64, []any{1, 2}},
		col{"country", arrow.BinaryTypes.String, []any{"DE", nil}})
	out := mustImport(t, f, catalog.ImportSpec{Sources: []string{p}, PartitionBy: []string{"country"}})
	info := describe(t, f, out.Entry)
	var got []string
	for _, df := range info.Files {
		b, err := json.Marshal(df)
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Partition map[string]*string }
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		s := "NULL"
		if c := v.Partition["country"]; c != nil {
			s = *c
		}
		got = append(got, df.Partition["country"]+"→"+s)
	}
	slices.Sort(got)
	eqStrings(t, "partitions as text→JSON", got, []string{"DE→DE", "null→NULL"})
}
