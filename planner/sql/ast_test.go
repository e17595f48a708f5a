package sql

import (
	"reflect"
	"strings"
	"testing"
)

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

// TestOutputColumns reads the output columns of trimmed parse trees.
func TestOutputColumns(t *testing.T) {
	t.Parallel()
	// Trees as DuckDB 1.5's json_serialize_sql prints them (trimmed).
	cases := []struct {
		name, tree string
		want       []string
		ok         bool
	}{
		{"columns and aliases", `{"error":false,"statements":[{"node":{"type":"SELECT_NODE","select_list":[
			{"class":"COLUMN_REF","alias":"","column_names":["a"]},
			{"class":"COLUMN_REF","alias":"c","column_names":["b"]},
			{"class":"COLUMN_REF","alias":"","column_names":["t","d"]},
			{"class":"FUNCTION","alias":"total","function_name":"sum"}]}}]}`, []string{"a", "c", "d", "total"}, true},
		{"unaliased expression", `{"error":false,"statements":[{"node":{"type":"SELECT_NODE","select_list":[
			{"class":"FUNCTION","alias":"","function_name":"sum"}]}}]}`, nil, false},
		{"star", `{"error":false,"statements":[{"node":{"type":"SELECT_NODE","select_list":[{"class":"STAR","alias":""}]}}]}`, nil, false},
		{"set operation", `{"error":false,"statements":[{"node":{"type":"SET_OPERATION_NODE","left":{"type":"SELECT_NODE","select_list":[
			{"class":"COLUMN_REF","alias":"","column_names":["x"]}]},"right":{"type":"SELECT_NODE","select_list":[]}}}]}`, []string{"x"}, true},
		{"duplicate name", `{"error":false,"statements":[{"node":{"type":"SELECT_NODE","select_list":[
			{"class":"COLUMN_REF","alias":"","column_names":["a"]},{"class":"COLUMN_REF","alias":"","column_names":["t","a"]}]}}]}`, nil, false},
		{"parse error", `{"error":true,"error_message":"syntax error"}`, nil, false},
		{"not json", `nope`, nil, false},
	}
	for _, tc := range cases {
		st, err := ParseStatement("", []byte(tc.tree))
		var got []string
		if err == nil {
			got = st.Output
		}
		if ok := got != nil; ok != tc.ok || tc.ok && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Output = %v (error %v); want %v, %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}
