package flightsql

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestBind(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, sql string
		params    []string
		want      string
		err       string
	}{
		{name: "none", sql: "SELECT 1", want: "SELECT 1"},
		{name: "two in order", sql: "SELECT * FROM t WHERE a = ? AND b > ?", params: []string{"1", "'x'"},
			want: "SELECT * FROM t WHERE a = 1 AND b > 'x'"},
		{name: "quotes and comments keep their ?", sql: `SELECT '?', "a?b", 'it''s ?' -- ?` + "\n" + `/* ? */ FROM t WHERE a = ?`,
			params: []string{"2"}, want: `SELECT '?', "a?b", 'it''s ?' -- ?` + "\n" + `/* ? */ FROM t WHERE a = 2`},
		{name: "too few bound", sql: "SELECT ?, ?", params: []string{"1"}, err: "has 2 parameters and 1 are bound"},
		{name: "too many bound", sql: "SELECT 1", params: []string{"1"}, err: "has 0 parameters and 1 are bound"},
		{name: "unterminated string", sql: "SELECT 'abc", params: []string{}, err: "unterminated ' quote"},
		{name: "unterminated comment", sql: "SELECT /* abc", params: []string{}, err: "unterminated /* comment"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := bind(tc.sql, tc.params)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestLiteral(t *testing.T) {
	t.Parallel()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ts := time.Date(2026, 1, 5, 8, 59, 30, 0, time.UTC)
	fields := []arrow.Field{
		{Name: "i", Type: arrow.PrimitiveTypes.Int64},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64},
		{Name: "s", Type: arrow.BinaryTypes.String},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond}},
		{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary},
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	b.Field(0).(*array.Int64Builder).Append(-42)
	b.Field(1).(*array.Float64Builder).Append(1.5)
	b.Field(2).(*array.StringBuilder).Append("it's")
	b.Field(3).(*array.BooleanBuilder).Append(true)
	b.Field(4).(*array.Date32Builder).Append(arrow.Date32FromTime(ts))
	b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
	b.Field(6).AppendNull()
	b.Field(7).(*array.BinaryBuilder).Append([]byte{1})
	rec := b.NewRecordBatch()
	defer rec.Release()
	want := []string{"-42", "1.5::DOUBLE", "'it''s'", "TRUE", "DATE '2026-01-05'", "TIMESTAMP '2026-01-05 08:59:30'", "NULL", ""}
	for i, w := range want {
		got, err := literal(rec.Column(i), 0)
		if w == "" {
			if err == nil || !strings.Contains(err.Error(), "not supported") {
				t.Errorf("%s: got %q, %v; want an error", fields[i].Name, got, err)
			}
			continue
		}
		if err != nil || got != w {
			t.Errorf("%s: got %q, %v; want %q", fields[i].Name, got, err, w)
		}
	}
}

func TestLike(t *testing.T) {
	t.Parallel()
	pat := func(s string) *string { return &s }
	cases := []struct {
		pattern *string
		yes, no []string
	}{
		{pattern: nil, yes: []string{"", "anything"}},
		{pattern: pat("sa%"), yes: []string{"sa", "sales"}, no: []string{"xsales"}},
		{pattern: pat("t_"), yes: []string{"t1"}, no: []string{"t", "t12"}},
		{pattern: pat(`a\_b`), yes: []string{"a_b"}, no: []string{"axb"}},
		{pattern: pat("a.b"), yes: []string{"a.b"}, no: []string{"axb"}},
	}
	for _, tc := range cases {
		m, err := like(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range tc.yes {
			if !m(s) {
				t.Errorf("%v does not match %q", *orEmpty(tc.pattern), s)
			}
		}
		for _, s := range tc.no {
			if m(s) {
				t.Errorf("%v matches %q", *orEmpty(tc.pattern), s)
			}
		}
	}
	if _, err := like(pat(`abc\`)); err == nil {
		t.Error("a lone backslash is accepted")
	}
}

func orEmpty(s *string) *string {
	if s == nil {
		return new(string)
	}
	return s
}

// FuzzBind checks that bind never panics and, when it succeeds, leaves
// no placeholder outside quotes and comments.
func FuzzBind(f *testing.F) {
	for _, s := range []string{"SELECT ?", "SELECT '?' , ?", "-- ?\n?", "/* ? */ ?", `"a""?" ?`, "'", "/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		n, err := placeholders(sql)
		if err != nil {
			return
		}
		params := make([]string, n)
		for i := range params {
			params[i] = "1"
		}
		out, err := bind(sql, params)
		if err != nil {
			t.Fatalf("bind after placeholders counted %d: %v", n, err)
		}
		if m, err := placeholders(out); err != nil || m != 0 {
			t.Fatalf("bound %q has %d placeholders left (%v)", out, m, err)
		}
	})
}
