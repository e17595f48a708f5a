package planner

import (
	"context"
	"encoding/json"
)

// SQLOutputParser is optionally implemented by an SQLParser that can name
// the columns a query returns. The planner then knows the output columns
// of SQL models that do not declare them, and checks readers against them.
type SQLOutputParser interface {
	// OutputColumns returns the names of the columns sql returns; ok is
	// false when they depend on the inputs' schemas (SELECT *) or on
	// expressions without an alias.
	OutputColumns(ctx context.Context, sql string) (cols []string, ok bool, err error)
}

// SelectOutputColumns reads the output column names of a query from
// DuckDB's json_serialize_sql parse tree: aliases, and the last part of
// plain column references. The left side of a set operation names the
// columns. ok is false for *, unaliased expressions, or a tree it cannot
// read.
func SelectOutputColumns(astJSON []byte) (cols []string, ok bool) {
	var tree struct {
		Error      bool `json:"error"`
		Statements []struct {
			Node json.RawMessage `json:"node"`
		} `json:"statements"`
	}
	if json.Unmarshal(astJSON, &tree) != nil || tree.Error || len(tree.Statements) != 1 {
		return nil, false
	}
	type expr struct {
		Class       string   `json:"class"`
		Alias       string   `json:"alias"`
		ColumnNames []string `json:"column_names"`
	}
	type node struct {
		Type       string          `json:"type"`
		SelectList []expr          `json:"select_list"`
		Left       json.RawMessage `json:"left"`
	}
	raw := tree.Statements[0].Node
	for depth := 0; depth < 64; depth++ {
		var n node
		if json.Unmarshal(raw, &n) != nil {
			return nil, false
		}
		switch n.Type {
		case "SET_OPERATION_NODE":
			raw = n.Left
			continue
		case "SELECT_NODE":
		default:
			return nil, false
		}
		seen := map[string]bool{}
		for _, e := range n.SelectList {
			name := e.Alias
			if name == "" && e.Class == "COLUMN_REF" && len(e.ColumnNames) > 0 {
				name = e.ColumnNames[len(e.ColumnNames)-1]
			}
			if name == "" || seen[name] {
				return nil, false
			}
			seen[name] = true
			cols = append(cols, name)
		}
		return cols, len(cols) > 0
	}
	return nil, false
}
