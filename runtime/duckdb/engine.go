package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	bindings "github.com/duckdb/duckdb-go-bindings"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Engine parses SQL with DuckDB's parser in a scratch in-memory DuckDB. It
// is safe for concurrent use; open one per process and reuse it. It
// implements planner/sql's Parser; what the tree means is read there.
type Engine struct {
	db *sql.DB
}

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

// SerializeSQL returns json_serialize_sql(sql). A query that does not
// parse yields DuckDB's error object, not an error.
func (e *Engine) SerializeSQL(ctx context.Context, query string) ([]byte, error) {
	var out string
	if err := e.db.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", query).Scan(&out); err != nil {
		return nil, fmt.Errorf("duckdb: parsing: %w", err)
	}
	return []byte(out), nil
}

// AggregateFunctions returns the names of DuckDB's aggregate functions
// (lower case).
func (e *Engine) AggregateFunctions(ctx context.Context) (map[string]bool, error) {
	rows, err := e.db.QueryContext(ctx, "SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE function_type = 'aggregate'")
	if err != nil {
		return nil, fmt.Errorf("duckdb: listing aggregate functions: %w", err)
	}
	defer rows.Close()
	names := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("duckdb: listing aggregate functions: %w", err)
		}
		names[n] = true
	}
	return names, rows.Err()
}

// Parser is an Engine opened on first use, so that a process that parses
// no SQL (a project without SQL models) never starts DuckDB. The zero
// value is ready; it is safe for concurrent use. Close it when done.
type Parser struct {
	once sync.Once
	eng  *Engine
	err  error
}

// SerializeSQL opens the Engine if needed and returns its SerializeSQL.
func (p *Parser) SerializeSQL(ctx context.Context, query string) ([]byte, error) {
	p.once.Do(func() { p.eng, p.err = New() })
	if p.err != nil {
		return nil, p.err
	}
	return p.eng.SerializeSQL(ctx, query)
}

// Close releases the Engine if it was opened. The Parser must not be used
// afterwards.
func (p *Parser) Close() error {
	if p.eng == nil {
		return nil
	}
	return p.eng.Close()
}

// Version is the version of DuckDB this binary links ("v1.5.5").
func Version() string { return bindings.LibraryVersion() }
