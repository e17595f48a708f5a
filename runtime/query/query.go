// Package query is the query path as a function: SQL + ref + namespace in,
// an Arrow record stream out. It plans with planner/sql (DuckDB's parser,
// the catalog, the table format's file pruning through
// catalog.TableScanner) and executes in a fresh,
// sandboxed in-process DuckDB (runtime/duckdb) per query. The CLI's
// `lakehouse query`, pipelines' SQL models and the Flight server reuse it.
// Write renders a stream in an output format; ExportParquet instead has
// DuckDB write a local query's Parquet file itself (export.go).
package query

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/catalog"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// Request is a query.
type Request struct {
	SQL string
	// Ref is the catalog state to read.
	Ref catalog.Ref
	// Namespace qualifies unqualified table names; default "default".
	Namespace catalog.Namespace
}

// Result is a running query. Read Reader to the end (or stop early) and
// Close it.
type Result struct {
	// Plan is the query's plan (for --explain and logs).
	Plan *plansql.Plan
	// Reader streams the rows as Arrow record batches.
	Reader array.RecordReader
	db     *duckdb.DB
	closed bool
}

// Close releases the reader and the query's DuckDB.
func (r *Result) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.Reader != nil {
		r.Reader.Release()
	}
	return r.db.Close()
}

var (
	engineOnce sync.Once
	engine     *duckdb.Engine
	engineErr  error
)

// Parser returns the process's shared SQL parser.
func Parser() (*duckdb.Engine, error) {
	engineOnce.Do(func() { engine, engineErr = duckdb.New() })
	return engine, engineErr
}

// Plan parses and plans req without running it: tables resolved in svc,
// scans planned by scans. Errors: ErrInvalidArgument (a
// *plansql.SyntaxError) for SQL that does not parse or is not a query,
// ErrNotFound for an unknown ref or table.
func Plan(ctx context.Context, svc catalog.Service, scans catalog.TableScanner, req Request) (*plansql.Plan, error) {
	p, err := Parser()
	if err != nil {
		return nil, err
	}
	return plansql.PlanQuery(ctx, p, svc, scans, plansql.Request{SQL: req.SQL, Ref: req.Ref, Namespace: req.Namespace})
}

// Run plans req (see Plan) and starts it in a fresh DuckDB whose only tables are views
// over the planned files. Errors: those of Plan, then *duckdb.Error
// (ErrInvalidArgument) for a query DuckDB rejects — unknown column, type
// error, or a statement the sandbox refuses.
func Run(ctx context.Context, svc catalog.Service, scans catalog.TableScanner, req Request) (*Result, error) {
	plan, err := Plan(ctx, svc, scans, req)
	if err != nil {
		return nil, err
	}
	return Execute(ctx, plan)
}

// pool holds the process's DuckDBs opened ahead of its queries (a
// process that runs one query opens none ahead).
var pool = duckdb.NewPool(duckdb.PoolConfig{})

// ClosePool closes the DuckDBs opened ahead of queries, so that none is
// left open when the process stops serving. Queries still run afterwards,
// each opening its DuckDB when it starts.
func ClosePool() error { return pool.Close() }

// Execute runs a plan.
func Execute(ctx context.Context, plan *plansql.Plan) (*Result, error) {
	db, err := pool.Get()
	if err != nil {
		return nil, err
	}
	db, err = prepare(db, plan)
	if err != nil {
		return nil, err
	}
	rd, err := db.Query(ctx, plan.SQL)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Result{Plan: plan, db: db, Reader: rd}, nil
}

// open starts a fresh DuckDB for plan: views over the planned files, then
// the sandbox locked.
func open(plan *plansql.Plan, opts duckdb.Options) (*duckdb.DB, error) {
	db, err := duckdb.Open(opts)
	if err != nil {
		return nil, err
	}
	return prepare(db, plan)
}

// prepare registers the views over plan's files in a fresh db and locks
// the sandbox; it closes db on error.
func prepare(db *duckdb.DB, plan *plansql.Plan) (*duckdb.DB, error) {
	var files []string
	for _, t := range plan.Tables {
		cols := make([]duckdb.Column, len(t.Schema))
		for i, c := range t.Schema {
			typ, err := duckType(c.Type)
			if err != nil {
				db.Close()
				return nil, fmt.Errorf("table %s column %s: %w", t.Ident, c.Name, err)
			}
			cols[i] = duckdb.Column{Name: c.Name, Type: typ}
		}
		if err := db.CreateView(string(t.Ident.Namespace), t.Ident.Name, cols, t.Files, t.SchemaEvolved); err != nil {
			db.Close()
			return nil, fmt.Errorf("registering table %s: %w", t.Ident, err)
		}
		files = append(files, t.Files...)
	}
	if err := db.Lock(string(plan.Namespace), files); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// duckType is the DuckDB type of a catalog column type (Iceberg's type
// names, as catalog.Column spells them).
func duckType(t string) (string, error) {
	switch t {
	case "boolean":
		return "BOOLEAN", nil
	case "int":
		return "INTEGER", nil
	case "long":
		return "BIGINT", nil
	case "float":
		return "FLOAT", nil
	case "double":
		return "DOUBLE", nil
	case "date":
		return "DATE", nil
	case "time":
		return "TIME", nil
	case "timestamp":
		return "TIMESTAMP", nil
	case "timestamptz":
		return "TIMESTAMPTZ", nil
	case "timestamp_ns":
		return "TIMESTAMP_NS", nil
	case "string":
		return "VARCHAR", nil
	case "uuid":
		return "UUID", nil
	case "binary":
		return "BLOB", nil
	}
	if strings.HasPrefix(t, "fixed[") && strings.HasSuffix(t, "]") {
		return "BLOB", nil
	}
	if ps, ok := strings.CutPrefix(t, "decimal("); ok {
		p, s, ok := strings.Cut(strings.TrimSuffix(ps, ")"), ",")
		prec, err1 := strconv.Atoi(strings.TrimSpace(p))
		scale, err2 := strconv.Atoi(strings.TrimSpace(s))
		if ok && strings.HasSuffix(ps, ")") && err1 == nil && err2 == nil {
			return fmt.Sprintf("DECIMAL(%d,%d)", prec, scale), nil
		}
	}
	return "", fmt.Errorf("type %s is not supported by queries yet", t)
}

// RecordReader is the stream of a result.
type RecordReader = array.RecordReader
