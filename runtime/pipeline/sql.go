package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
)

// sqlDB opens a fresh DuckDB holding the given inputs as tables, loaded
// from their memory-mapped IPC files through DuckDB's Arrow scan, and
// locks it: the query can read those tables and nothing else (no files, no
// network, no extensions).
func sqlDB(ctx context.Context, name string, memory int64, inputs map[string]string) (*duckdb.DB, error) {
	opts := duckdb.Options{}
	if memory > 0 {
		opts.MemoryLimit = fmt.Sprintf("%dMB", memory>>20)
	}
	db, err := duckdb.Open(opts)
	if err != nil {
		return nil, err
	}
	for _, as := range sortedKeys(inputs) {
		f, err := arrowipc.Open(inputs[as], arrowipc.Options{})
		if err != nil {
			db.Close()
			return nil, err
		}
		schema, table := "", as
		if i := strings.LastIndex(as, "."); i > 0 {
			schema, table = as[:i], as[i+1:]
		}
		err = db.LoadArrow(ctx, schema, table, f.Reader())
		f.Close()
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: loading input %s: %w", name, as, err)
		}
	}
	if err := db.Lock("main", nil); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// runSQL runs a SQL model: its query over its inputs, the result written
// as the model's IPC output.
func (r *run) runSQL(ctx context.Context, nd *node, inputs []boundInput) error {
	n := nd.n
	byName := map[string]string{}
	for _, in := range inputs {
		byName[in.in.Name] = in.path
	}
	ctx, stop := withModelTimeout(ctx, n)
	defer stop()
	db, err := sqlDB(ctx, n.Name, n.Resources.MemoryBytes, byName)
	if err != nil {
		return sqlTimeout(ctx, n, err)
	}
	defer db.Close()
	if err := r.querySQL(ctx, nd, db); err != nil {
		return sqlTimeout(ctx, n, err)
	}
	return nil
}

// querySQL runs a SQL model's query in db and writes its output.
func (r *run) querySQL(ctx context.Context, nd *node, db *duckdb.DB) error {
	n := nd.n
	rd, err := db.Query(ctx, n.SQL)
	if err != nil {
		return fmt.Errorf("model %s (%s:%d): %w", n.Name, n.File, sqlErrorLine(n, err), err)
	}
	defer rd.Release()
	rows, err := arrowipc.Write(ctx, nd.output, rd)
	if err != nil {
		return fmt.Errorf("model %s (%s:%d): %w", n.Name, n.File, sqlErrorLine(n, err), err)
	}
	r.set(func() { nd.rec.Rows = rows })
	return nil
}

// errModelTimeout is the cause of a SQL model's context at its timeout.
var errModelTimeout = errors.New("model timeout")

// withModelTimeout bounds ctx by n's timeout (none when 0): cancelling it
// interrupts the model's DuckDB query.
func withModelTimeout(ctx context.Context, n *planner.Node) (context.Context, context.CancelFunc) {
	t := time.Duration(n.Resources.TimeoutSecs) * time.Second
	if t <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, t, errModelTimeout)
}

// sqlTimeout turns err into the model's timeout failure when its own
// timeout stopped it, so it is reported like a Python model's.
func sqlTimeout(ctx context.Context, n *planner.Node, err error) error {
	if errors.Is(context.Cause(ctx), errModelTimeout) {
		return &function.FunctionError{Model: n.Name, Kind: function.FailureTimeout,
			Timeout: time.Duration(n.Resources.TimeoutSecs) * time.Second}
	}
	return err
}

// duckLineRE finds the line DuckDB's error message points at.
var duckLineRE = regexp.MustCompile(`(?m)^LINE (\d+):`)

// sqlErrorLine is the line of a SQL model's file that err points at. The
// query DuckDB runs is the whole file (header comments included, and
// parameters substituted without adding lines), so DuckDB's "LINE n" is
// the file's line n; errors without one point at the model's first line.
func sqlErrorLine(n *planner.Node, err error) int {
	if m := duckLineRE.FindStringSubmatch(err.Error()); m != nil {
		if l, convErr := strconv.Atoi(m[1]); convErr == nil && l > 0 {
			return n.Line + l - 1
		}
	}
	return n.Line
}

// filterFile applies an input's columns and filter to an upstream model's
// output, in DuckDB, into a new IPC file (a filter needs a copy; columns
// alone are selected by the function without one).
func (r *run) filterFile(ctx context.Context, model string, in planner.Input, path string) (string, error) {
	db, err := sqlDB(ctx, model, 0, map[string]string{"input": path})
	if err != nil {
		return "", err
	}
	defer db.Close()
	cols := "*"
	if len(in.Columns) > 0 {
		q := make([]string, len(in.Columns))
		for i, c := range in.Columns {
			q[i] = duckdb.Ident(c)
		}
		cols = strings.Join(q, ", ")
	}
	rd, err := db.Query(ctx, "SELECT "+cols+" FROM input WHERE ("+in.Filter+")")
	if err != nil {
		return "", fmt.Errorf("%s: filter of input %s: %w", model, in.Name, err)
	}
	defer rd.Release()
	out := filepath.Join(r.dir, "in", safeName(model+"-"+in.Param+"-"+in.Name)+".arrow")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	if _, err := arrowipc.Write(ctx, out, rd); err != nil {
		return "", err
	}
	os.Chmod(out, 0o444)
	return out, nil
}
