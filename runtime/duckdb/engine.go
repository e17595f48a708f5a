package duckdb

import (
	"context"
	"database/sql"
	"fmt"

	duckdb "github.com/duckdb/duckdb-go/v2"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
)

// Engine parses SQL with DuckDB's parser in a scratch in-memory DuckDB. It
// is safe for concurrent use; open one per process and reuse it.
type Engine struct {
	db *sql.DB
}

var _ plansql.Parser = (*Engine)(nil)

// New opens an Engine.
func New() (*Engine, error) {
	c, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("duckdb: opening the parser: %w", err)
	}
	db := sql.OpenDB(c)
	// The parser runs no user SQL, but lock it down all the same.
	for _, s := range []string{"SET threads=1", "SET enable_external_access=false", "SET lock_configuration=true"} {
		if _, err := db.Exec(s); err != nil {
			db.Close()
			return nil, fmt.Errorf("duckdb: configuring the parser: %w", err)
		}
	}
	return &Engine{db: db}, nil
}

// Close releases the parser.
func (e *Engine) Close() error { return e.db.Close() }

// SerializeSQL implements plansql.Parser: json_serialize_sql(sql). A query
// that does not parse yields DuckDB's error object, not an error.
func (e *Engine) SerializeSQL(ctx context.Context, query string) ([]byte, error) {
	var out string
	if err := e.db.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", query).Scan(&out); err != nil {
		return nil, fmt.Errorf("duckdb: parsing: %w", err)
	}
	return []byte(out), nil
}

// TableRef is a table a query reads, as written: Schema is "" for an
// unqualified name. Pos is the byte offset of the reference in the SQL,
// -1 when DuckDB's parse tree does not give it.
type TableRef struct {
	Schema, Name string
	Pos          int
}

// TableRefs lists the tables sql reads, in order of position, CTE names
// excluded. Errors are of class errdefs.ErrInvalidArgument (a
// *plansql.SyntaxError carrying DuckDB's message and position) for SQL that
// does not parse, is not a single SELECT-like statement, or names a
// three-part table.
func (e *Engine) TableRefs(ctx context.Context, query string) ([]TableRef, error) {
	st, err := plansql.Parse(ctx, e, query)
	if err != nil {
		return nil, err
	}
	out := make([]TableRef, 0, len(st.Tables))
	for _, t := range st.Tables {
		if t.Catalog != "" {
			return nil, &plansql.SyntaxError{Msg: fmt.Sprintf("table %s.%s.%s: name tables as TABLE or NAMESPACE.TABLE", t.Catalog, t.Schema, t.Name), Pos: t.Pos, SQL: query}
		}
		out = append(out, TableRef{Schema: t.Schema, Name: t.Name, Pos: t.Pos})
	}
	return out, nil
}
