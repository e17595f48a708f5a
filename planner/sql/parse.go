package sql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Parser serializes SQL with DuckDB's parser. runtime/duckdb implements it
// (Engine, and Parser, which opens its DuckDB on first use).
type Parser interface {
	// SerializeSQL returns the JSON of json_serialize_sql(sql): the parse
	// tree, or DuckDB's error object for SQL that does not parse.
	SerializeSQL(ctx context.Context, sql string) ([]byte, error)
}

// MaxQueryBytes bounds the length of a query text.
const MaxQueryBytes = 4 << 20

// Parse parses one SELECT statement with p. Errors: ErrInvalidArgument (a
// *SyntaxError, or a too long or non-UTF-8 text) for SQL that does not
// parse, is empty, is not a single SELECT-like statement or has an AT
// clause; the parser's own errors otherwise.
func Parse(ctx context.Context, p Parser, sql string) (*Statement, error) {
	if len(sql) > MaxQueryBytes {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "the query is %d bytes long; the limit is %d", len(sql), MaxQueryBytes)
	}
	if !utf8.ValidString(sql) {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "the query is not valid UTF-8 text")
	}
	if strings.TrimSpace(sql) == "" {
		return nil, &SyntaxError{Msg: "the query is empty", Pos: -1, SQL: sql}
	}
	js, err := p.SerializeSQL(ctx, sql)
	if err != nil {
		return nil, err
	}
	return ParseStatement(sql, js)
}

// Analyze parses sql for plan-time use (the SQL models of a project, the
// filters of inputs): the statement's table references, in order of
// position with CTE names left out, and its output columns. Errors: those
// of Parse, and a *SyntaxError (ErrInvalidArgument) for a three-part table
// name, which no catalog table has.
func Analyze(ctx context.Context, p Parser, sql string) (*Statement, error) {
	st, err := Parse(ctx, p, sql)
	if err != nil {
		return nil, err
	}
	for _, t := range st.Tables {
		if t.Catalog != "" {
			return nil, &SyntaxError{Msg: fmt.Sprintf("table %s.%s.%s: name tables as TABLE or NAMESPACE.TABLE", t.Catalog, t.Schema, t.Name), Pos: t.Pos, SQL: sql}
		}
	}
	return st, nil
}

// IsSyntaxError reports whether err is a query that does not parse.
func IsSyntaxError(err error) bool {
	var se *SyntaxError
	return errors.As(err, &se)
}
