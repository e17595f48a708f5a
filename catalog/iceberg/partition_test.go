package iceberg

import (
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func TestParsePartitionField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        string
		transform string // "" when the input is invalid
		column    string
		wantErr   string
	}{
		{in: "country", transform: "identity", column: "country"},
		{in: " country ", transform: "identity", column: "country"},
		{in: "identity(country)", transform: "identity", column: "country"},
		{in: "day(ts)", transform: "day", column: "ts"},
		{in: "DAYS( ts )", transform: "day", column: "ts"},
		{in: "month(ts)", transform: "month", column: "ts"},
		{in: "year(ts)", transform: "year", column: "ts"},
		{in: "hour(ts)", transform: "hour", column: "ts"},
		{in: "bucket(16,id)", transform: "bucket[16]", column: "id"},
		{in: "bucket( 16 , id )", transform: "bucket[16]", column: "id"},
		{in: "truncate(4,name)", transform: "truncate[4]", column: "name"},
		{in: "order id", transform: "identity", column: "order id"},
		{in: "", wantErr: "it is not a column name"},
		{in: "day(ts", wantErr: "missing closing parenthesis"},
		{in: "(ts)", wantErr: "missing transform name before '('"},
		{in: "week(ts)", wantErr: `unknown transform "week"`},
		{in: "day()", wantErr: `"" is not a column name`},
		{in: "day(a,b)", wantErr: "day takes one column"},
		{in: "bucket(id)", wantErr: "bucket takes two arguments, bucket(N,col)"},
		{in: "bucket(0,id)", wantErr: `bucket needs a positive whole number as its first argument, not "0"`},
		{in: "bucket(-3,id)", wantErr: `bucket needs a positive whole number as its first argument, not "-3"`},
		{in: "truncate(x,id)", wantErr: `truncate needs a positive whole number as its first argument, not "x"`},
		{in: "bucket(99999999999,id)", wantErr: "positive whole number"},
		{in: "day(day(ts))", wantErr: `"day(ts)" is not a column name`},
		{in: "a,b", wantErr: "it is not a column name"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			pf, err := parsePartitionField(tc.in)
			if tc.transform == "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errdefs.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pf.transform.String() != tc.transform || pf.column != tc.column {
				t.Errorf("got %s(%s), want %s(%s)", pf.transform, pf.column, tc.transform, tc.column)
			}
		})
	}
}

func TestPartitionSpec(t *testing.T) {
	t.Parallel()
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 2, Name: "ts", Type: iceberg.PrimitiveTypes.Timestamp},
		iceberg.NestedField{ID: 3, Name: "name", Type: iceberg.PrimitiveTypes.String})
	tests := []struct {
		name    string
		fields  []string
		want    string
		wantErr string
	}{
		{name: "none", want: ""},
		{name: "transforms", fields: []string{"id", "year(ts)", "bucket(8,name)", "truncate(2,name)"},
			want: "id:identity ts_year:year name_bucket:bucket[8] name_trunc:truncate[2]"},
		{name: "hour", fields: []string{"hour(ts)"}, want: "ts_hour:hour"},
		{name: "month", fields: []string{"months(ts)"}, want: "ts_month:month"},
		{name: "redundant", fields: []string{"year(ts)", "month(ts)"}, wantErr: "invalid partition spec year(ts), month(ts): invalid partition spec: redundant partition field for source IDs [2]: ts_month (month) conflicts with ts_year (year)"},
		{name: "duplicate", fields: []string{"day(ts)", "days(ts)"}, wantErr: `partition fields "day(ts)" and "days(ts)" both define partition "ts_day"`},
		{name: "unknown column", fields: []string{"bucket(4,nope)"}, wantErr: `unknown partition column "nope" in "bucket(4,nope)"; the table's columns are id, ts, name`},
		{name: "wrong type", fields: []string{"hour(name)"}, wantErr: `invalid partition field "hour(name)": hour cannot be applied to column "name" of type string`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec, err := partitionSpec(sc, tc.fields)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errdefs.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("error = %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range spec.Fields() {
				got = append(got, f.Name+":"+f.Transform.String())
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("spec = %s, want %s", strings.Join(got, " "), tc.want)
			}
		})
	}
}

func FuzzParsePartitionField(f *testing.F) {
	for _, s := range []string{"country", "day(ts)", "bucket(16,id)", "truncate(4, name)", "identity(x)",
		"bucket(,)", "((", ")", "day(ts))", "bucket(1e9,x)", "hour(\x00)", " months ( t ) "} {
		f.Add(s)
	}
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 2, Name: "ts", Type: iceberg.PrimitiveTypes.Timestamp})
	f.Fuzz(func(t *testing.T, s string) {
		pf, err := parsePartitionField(s)
		if err != nil {
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("unclassed error %v", err)
			}
			return
		}
		if pf.transform == nil || !validPartitionColumn(pf.column) {
			t.Fatalf("parsed %q into %+v", s, pf)
		}
		// Binding never panics and fails only with a classed error.
		if _, err := partitionSpec(sc, []string{s}); err != nil && !errdefs.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("unclassed error %v", err)
		}
	})
}
