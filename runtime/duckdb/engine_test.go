package duckdb_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// TestSerializeSQL: a query serializes to DuckDB's parse tree, a syntax
// error to DuckDB's error object (not a Go error); the lazy Parser gives
// the same bytes as an Engine.
func TestSerializeSQL(t *testing.T) {
	t.Parallel()
	eng, err := duckdb.New()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	var lazy duckdb.Parser
	defer lazy.Close()
	ctx := context.Background()
	cases := []struct {
		name, sql string
		isError   bool
	}{
		{"query", "SELECT a FROM t", false},
		{"syntax error", "SELECT * FROM t WHER x", true},
		{"not a query", "DELETE FROM t", true},
	}
	for _, c := range cases {
		js, err := eng.SerializeSQL(ctx, c.sql)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var head struct {
			Error      bool  `json:"error"`
			Statements []any `json:"statements"`
		}
		if err := json.Unmarshal(js, &head); err != nil {
			t.Fatalf("%s: %v in %s", c.name, err, js)
		}
		if head.Error != c.isError || !c.isError && len(head.Statements) != 1 {
			t.Errorf("%s: error %v, %d statements: %s", c.name, head.Error, len(head.Statements), js)
		}
		lj, err := lazy.SerializeSQL(ctx, c.sql)
		if err != nil || string(lj) != string(js) {
			t.Errorf("%s: lazy parser gave %s, %v", c.name, lj, err)
		}
	}
}

// TestParserUnused: closing a Parser that never parsed opens nothing.
func TestParserUnused(t *testing.T) {
	t.Parallel()
	var p duckdb.Parser
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
