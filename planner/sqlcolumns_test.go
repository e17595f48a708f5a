package planner

import (
	"reflect"
	"testing"
)

func TestSelectOutputColumns(t *testing.T) {
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
		got, ok := SelectOutputColumns([]byte(tc.tree))
		if ok != tc.ok || tc.ok && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: SelectOutputColumns = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
