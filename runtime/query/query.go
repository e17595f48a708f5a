// Package query is the query path as a function: SQL + ref + namespace in,
// an Arrow record stream out. It plans with planner/sql (DuckDB's parser,
// the catalog, the table format's file pruning through
// catalog.TableScanner) and executes in a sandboxed in-process DuckDB
// (runtime/duckdb) of its own: fresh, or the one the last query over the
// same views and files left (duckdb.Pool.Put). The CLI's
// `lakehouse query`, pipelines' SQL models and the Flight server reuse it.
// Write renders a stream in an output format; ExportParquet instead has
// DuckDB write a local query's Parquet file itself (export.go).
package query

import (
	"context"
	"encoding/json"
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
	ctx    context.Context
	// key names how db was prepared, for the pool to hand it to the next
	// query prepared alike.
	key    string
	closed bool
}

// Close releases the reader and the query's DuckDB: a query that ended
// without error or cancellation leaves it to the next query over the
// same views and files (duckdb.Pool.Put), any other closes it.
func (r *Result) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	reuse := r.ctx.Err() == nil && !changesSession(r.Plan.SQL)
	if r.Reader != nil {
		reuse = reuse && r.Reader.Err() == nil
		r.Reader.Release()
	}
	if reuse {
		pool.Put(r.key, r.db)
		return nil
	}
	return r.db.Close()
}

// sessionFunctions are the functions a SELECT may call that change the
// state of its DuckDB for the statements after it.
var sessionFunctions = []string{"setseed"}

// changesSession reports whether sql may call a function that leaves state
// behind in its DuckDB (the random seed): its DB is then closed, never
// handed to the next query. A plain substring check: a false positive only
// costs the next query a fresh DB.
func changesSession(sql string) bool {
	low := strings.ToLower(sql)
	for _, f := range sessionFunctions {
		if strings.Contains(low, f) {
			return true
		}
	}
	return false
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

// Run plans req (see Plan) and starts it in a DuckDB whose only tables
// are views over the planned files (see Execute). Errors: those of Plan, then *duckdb.Error
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

// Execute runs a plan in a DuckDB the pool kept from a query prepared
// alike (see prepareKey), else in a fresh one it prepares.
func Execute(ctx context.Context, plan *plansql.Plan) (*Result, error) {
	// A query that only streams rows leaves a core to its reader
	// (duckdb.StreamThreads).
	n := threads(plan.SQL)
	key, err := prepareKey(plan, n)
	if err != nil {
		return nil, err
	}
	db := pool.Take(key)
	if db == nil {
		if db, err = pool.Get(); err != nil {
			return nil, err
		}
		if db, err = prepare(db, plan, n); err != nil {
			return nil, err
		}
	}
	rd, err := db.Query(ctx, plan.SQL)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Result{Plan: plan, db: db, Reader: rd, ctx: ctx, key: key}, nil
}

// prepareKey names what prepare does in a DB for plan with threads: the
// schema, each view's name, columns and files, the thread count. Two
// plans with one key prepare their DBs alike.
func prepareKey(plan *plansql.Plan, threads int) (string, error) {
	type view struct {
		Namespace, Name string
		Columns         []string
		Files           []string
		Evolved         bool
	}
	k := struct {
		Namespace string
		Views     []view
		Threads   int `json:",omitempty"`
	}{Namespace: string(plan.Namespace), Threads: threads}
	for _, t := range plan.Tables {
		v := view{Namespace: string(t.Ident.Namespace), Name: t.Ident.Name, Files: t.Files, Evolved: t.SchemaEvolved}
		for _, c := range t.Schema {
			v.Columns = append(v.Columns, c.Name+" "+c.Type)
		}
		k.Views = append(k.Views, v)
	}
	b, err := json.Marshal(k)
	return string(b), err
}

// open starts a fresh DuckDB for plan: views over the planned files, then
// the sandbox locked.
func open(plan *plansql.Plan, opts duckdb.Options) (*duckdb.DB, error) {
	db, err := duckdb.Open(opts)
	if err != nil {
		return nil, err
	}
	return prepare(db, plan, 0)
}

// prepare registers the views over plan's files in a fresh db, sets its
// thread count to threads (0: leaves it) and locks the sandbox; it closes
// db on error.
func prepare(db *duckdb.DB, plan *plansql.Plan, threads int) (*duckdb.DB, error) {
	if threads > 0 {
		if err := db.SetThreads(threads); err != nil {
			db.Close()
			return nil, err
		}
	}
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
