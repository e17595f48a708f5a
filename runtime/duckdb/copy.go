package duckdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	bindings "github.com/duckdb/duckdb-go-bindings"
)

// ErrCopyUnsupported is returned by CopyParquet for a result that DuckDB's
// Parquet writer would store otherwise than the Arrow result reads (see
// CopyParquet); nothing has run and the DB is still usable: write the
// Arrow stream of Query instead.
var ErrCopyUnsupported = errors.New("duckdb: the result has a column DuckDB's Parquet writer does not store as its Arrow form")

// resultView is the name of the temporary view CopyParquet puts over the
// user's query: random, so that no table the query names is shadowed.
func resultView() string {
	var b [8]byte
	rand.Read(b[:])
	return "lakehouse_result_" + hex.EncodeToString(b[:])
}

// CopyParquet runs sql (one SELECT statement; the caller has checked it)
// and has DuckDB write at most limit rows (limit < 0: all) of its result
// to path as Parquet (Snappy), with its own writer on all its threads. It
// returns the number of rows written.
//
// path must be a file directly in Options.OutputDir, the one directory the
// sandbox lets this DB write: the path is this package's, never the
// user's, and the user's SQL runs under the same locked sandbox as Query.
// The user's SQL becomes a temporary view (its text last, so a trailing
// semicolon or comment ends it as in Query), and the COPY statement reads
// that view: each statement is checked to be exactly one statement of its
// kind before it runs.
//
// The file reads back as the Arrow result written by arrow-go's Parquet
// writer would: the same column names and types. DuckDB writes most types
// so already; those it would write otherwise are converted in the COPY's
// projection: an INTERVAL becomes struct<months: int32, days: int32,
// nanoseconds: int64> (NULL stays a NULL struct), HUGEINT and UHUGEINT
// DECIMAL(38,0), UUID and aliased types (JSON) VARCHAR. A result with any
// other type (nested, ENUM, TIMESTAMP_S/_MS, TIME WITH TIME ZONE, NULL, …)
// or with two columns of one name is ErrCopyUnsupported.
//
// Errors: those of Query for the user's SQL; ctx's error when cancelled
// (the COPY is interrupted; path may hold a partial file, which the caller
// removes with its directory).
func (d *DB) CopyParquet(ctx context.Context, sql, path string, limit int64) (int64, error) {
	if !d.locked {
		return 0, fmt.Errorf("duckdb: CopyParquet before Lock")
	}
	if d.outDir == "" || !filepath.IsAbs(path) || filepath.Dir(path) != d.outDir {
		return 0, fmt.Errorf("duckdb: CopyParquet to %s: not a file of the output directory", path)
	}
	done := make(chan struct{})
	defer close(done)
	d.interruptOnCancel(ctx, done)
	cols, err := d.describe(sql)
	if err != nil {
		return 0, ctxErr(ctx, err)
	}
	aliases := make([]string, len(cols))
	exprs := make([]string, len(cols))
	seen := make(map[string]bool, len(cols))
	for i, c := range cols {
		if seen[strings.ToLower(c.name)] {
			return 0, ErrCopyUnsupported
		}
		seen[strings.ToLower(c.name)] = true
		aliases[i] = fmt.Sprintf("c%d", i)
		e, ok := parquetExpr(aliases[i], c)
		if !ok {
			return 0, ErrCopyUnsupported
		}
		exprs[i] = e + " AS " + Ident(c.name)
	}
	name := resultView()
	view := "CREATE TEMP VIEW " + name + "(" + strings.Join(aliases, ", ") + ") AS\n" + sql
	if _, err := d.runOne(view, bindings.StatementTypeCreate); err != nil {
		return 0, ctxErr(ctx, err)
	}
	var b strings.Builder
	b.WriteString("COPY (SELECT " + strings.Join(exprs, ", ") + " FROM temp.main." + name)
	if limit >= 0 {
		fmt.Fprintf(&b, " LIMIT %d", limit)
	}
	b.WriteString(") TO " + Literal(path) + " (FORMAT parquet, COMPRESSION snappy)")
	n, err := d.runOne(b.String(), bindings.StatementTypeCopy)
	if err != nil {
		return 0, ctxErr(ctx, err)
	}
	return n, nil
}

// resultColumn is a column of a prepared statement's result.
type resultColumn struct {
	name  string
	typ   bindings.Type
	alias string // the logical type's alias ("JSON"), if any
}

// describe prepares sql and returns its result's columns. Its errors are
// Query's.
func (d *DB) describe(sql string) ([]resultColumn, error) {
	var stmt bindings.PreparedStatement
	defer bindings.DestroyPrepare(&stmt)
	if bindings.Prepare(d.conn, sql, &stmt) == bindings.StateError {
		return nil, newError(bindings.PrepareError(stmt), sql)
	}
	n := bindings.PreparedStatementColumnCount(stmt)
	cols := make([]resultColumn, n)
	for i := range n {
		lt := bindings.PreparedStatementColumnLogicalType(stmt, i)
		cols[i] = resultColumn{
			name:  bindings.PreparedStatementColumnName(stmt, i),
			typ:   bindings.GetTypeId(lt),
			alias: bindings.LogicalTypeGetAlias(lt),
		}
		bindings.DestroyLogicalType(&lt)
	}
	return cols, nil
}

// runOne runs stmt, which must be exactly one statement of type typ, and
// returns the first value of its result (a COPY's row count).
func (d *DB) runOne(stmt string, typ bindings.StatementType) (int64, error) {
	var ext bindings.ExtractedStatements
	defer bindings.DestroyExtracted(&ext)
	if n := bindings.ExtractStatements(d.conn, stmt, &ext); n != 1 {
		if msg := bindings.ExtractStatementsError(ext); msg != "" {
			return 0, newError(msg, stmt)
		}
		return 0, fmt.Errorf("duckdb: %d statements where one was built", n)
	}
	var prep bindings.PreparedStatement
	defer bindings.DestroyPrepare(&prep)
	if bindings.PrepareExtractedStatement(d.conn, ext, 0, &prep) == bindings.StateError {
		return 0, newError(bindings.PrepareError(prep), stmt)
	}
	if got := bindings.PreparedStatementType(prep); got != typ {
		return 0, fmt.Errorf("duckdb: built a statement of type %d, want %d", got, typ)
	}
	var res bindings.Result
	defer bindings.DestroyResult(&res)
	if bindings.ExecutePrepared(prep, &res) == bindings.StateError {
		return 0, newError(bindings.ResultError(&res), stmt)
	}
	if bindings.ColumnCount(&res) == 0 {
		return 0, nil
	}
	return bindings.ValueInt64(&res, 0, 0), nil
}

// parquetExpr is the COPY projection of column c (named col in the view)
// that DuckDB's Parquet writer stores as the column's Arrow form reads, or
// false if there is none (see CopyParquet).
func parquetExpr(col string, c resultColumn) (string, bool) {
	if c.alias != "" {
		if c.typ == bindings.TypeVarchar {
			return col + "::VARCHAR", true
		}
		return "", false
	}
	switch c.typ {
	case bindings.TypeBoolean,
		bindings.TypeTinyInt, bindings.TypeSmallInt, bindings.TypeInteger, bindings.TypeBigInt,
		bindings.TypeUTinyInt, bindings.TypeUSmallInt, bindings.TypeUInteger, bindings.TypeUBigInt,
		bindings.TypeFloat, bindings.TypeDouble, bindings.TypeDecimal,
		bindings.TypeDate, bindings.TypeTime,
		bindings.TypeTimestamp, bindings.TypeTimestampTZ, bindings.TypeTimestampNS,
		bindings.TypeVarchar, bindings.TypeBlob:
		return col, true
	case bindings.TypeHugeInt, bindings.TypeUHugeInt:
		return col + "::DECIMAL(38,0)", true
	case bindings.TypeUUID:
		return col + "::VARCHAR", true
	case bindings.TypeInterval:
		// DuckDB holds months, days and microseconds; datepart splits the
		// microseconds into hours, minutes and microseconds of the minute,
		// each with the interval's sign.
		return "CASE WHEN " + col + " IS NULL THEN NULL ELSE struct_pack(" +
			"months := (datepart('year', " + col + ") * 12 + datepart('month', " + col + "))::INTEGER, " +
			"days := datepart('day', " + col + ")::INTEGER, " +
			"nanoseconds := (datepart('hour', " + col + ") * 3600000000 + datepart('minute', " + col + ") * 60000000 + " +
			"datepart('microseconds', " + col + ")) * 1000) END", true
	}
	return "", false
}
