package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// ExportFile is the name of the file ExportParquet writes in its
// directory.
const ExportFile = "out.parquet"

// ExportParquet runs plan as Execute does and writes its result, at most
// limit rows (limit < 0: all), as Parquet to the file ExportFile in dir.
// The caller creates dir empty and private (os.MkdirTemp makes it 0700)
// for this one query, beside the target so that moving the file out is an
// atomic rename, and removes dir afterwards. The file's mode is 0666 less
// the umask.
//
// DuckDB writes the file itself, on all its threads (duckdb.DB.CopyParquet):
// dir is the one directory the sandbox lets it write, fixed by this
// function before the configuration is locked; the user's SQL still runs
// as one sandboxed SELECT that can name no path. This is several times
// faster than Write's Parquet output, which goes through arrow-go's
// single-threaded writer.
//
// The file holds what Write's Parquet output of the same result holds:
// the same column names and types (intervals as struct<months, days,
// nanoseconds>, see Write). A result with a column DuckDB's writer cannot
// store so (see duckdb.DB.CopyParquet) goes through Write into the same
// file instead.
//
// Errors: those of Execute, and those of writing the file. On error dir
// may hold a partial file.
func ExportParquet(ctx context.Context, plan *plansql.Plan, dir string, limit int64) (WriteStats, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return WriteStats{}, err
	}
	db, err := open(plan, duckdb.Options{OutputDir: dir})
	if err != nil {
		return WriteStats{}, err
	}
	defer db.Close()
	path := filepath.Join(dir, ExportFile)
	n, err := db.CopyParquet(ctx, plan.SQL, path, limit)
	if !errors.Is(err, duckdb.ErrCopyUnsupported) {
		return WriteStats{Rows: n}, err
	}
	rd, err := db.Query(ctx, plan.SQL)
	if err != nil {
		return WriteStats{}, err
	}
	defer rd.Release()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return WriteStats{}, err
	}
	st, err := Write(f, rd, FormatParquet, limit)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return st, err
}

// ExportParquetTo is ExportParquet into a private directory under
// os.TempDir(), then copied to w (standard output when it is a file or a
// pipe) and removed.
func ExportParquetTo(ctx context.Context, plan *plansql.Plan, w io.Writer, limit int64) (WriteStats, error) {
	dir, err := os.MkdirTemp("", "lakehouse-export-")
	if err != nil {
		return WriteStats{}, fmt.Errorf("parquet output: %w", err)
	}
	defer os.RemoveAll(dir)
	st, err := ExportParquet(ctx, plan, dir, limit)
	if err != nil {
		return st, err
	}
	f, err := os.Open(filepath.Join(dir, ExportFile))
	if err != nil {
		return st, err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return st, err
}
