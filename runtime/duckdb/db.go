package duckdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bindings "github.com/duckdb/duckdb-go-bindings"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// DB is a fresh in-memory DuckDB for one query: views over Parquet files,
// then Lock, then Query. It is not safe for concurrent use (except that a
// context cancelled during Query interrupts it).
type DB struct {
	db     bindings.Database
	conn   bindings.Connection
	locked bool
	closed bool
	// tmp is the spill directory this DB created, removed by Close.
	tmp string
	// outDir is Options.OutputDir, as an absolute path.
	outDir string
	mu     sync.Mutex // guards closed against Interrupt
	// onClose, if set, runs once Close has released the database (the
	// Pool tops itself up then).
	onClose func()
}

// Options configure a DB.
type Options struct {
	// Threads is DuckDB's worker thread count; 0 means
	// LAKEHOUSE_DUCKDB_THREADS, else one per core.
	Threads int
	// MemoryLimit is DuckDB's memory_limit ("4GB"); "" means
	// LAKEHOUSE_DUCKDB_MEMORY, else none of its own. Either way it is
	// capped at 80% of the machine's available memory (see limits.go).
	MemoryLimit string
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// TempDir is where DuckDB spills what does not fit in memory; "" means
	// a fresh directory under os.TempDir(), removed by Close. (DuckDB's
	// own default is ./.tmp in the working directory.)
	TempDir string
	// OutputDir is the one directory the sandbox lets this DB write to
	// (and read), for CopyParquet's output; "" means none. The caller
	// creates it empty and private (0700) for this one query and moves
	// the file out: it is never a directory user SQL names, and Lock
	// fixes it before any user SQL runs.
	OutputDir string
}

// Open starts a fresh in-memory DuckDB.
func Open(opts Options) (*DB, error) {
	var cfg bindings.Config
	if bindings.CreateConfig(&cfg) == bindings.StateError {
		return nil, fmt.Errorf("duckdb: creating a configuration")
	}
	defer bindings.DestroyConfig(&cfg)
	set := map[string]string{
		// Nothing outside the planned files is read; no extension is
		// installed or loaded behind the user's back.
		"autoinstall_known_extensions": "false",
		"autoload_known_extensions":    "false",
	}
	var mem int64
	if opts.MemoryLimit != "" {
		n, err := ParseSize(opts.MemoryLimit)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "duckdb: memory limit %q: %v", opts.MemoryLimit, err)
		}
		mem = n
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	lim, err := limits(getenv, mem, opts.Threads)
	if err != nil {
		return nil, err
	}
	if lim.Threads > 0 {
		set["threads"] = fmt.Sprint(lim.Threads)
	}
	if lim.MemoryBytes > 0 {
		set["memory_limit"] = fmt.Sprintf("%dB", lim.MemoryBytes)
	}
	d := &DB{}
	if opts.OutputDir != "" {
		abs, err := filepath.Abs(opts.OutputDir)
		if err != nil {
			return nil, fmt.Errorf("duckdb: output directory: %w", err)
		}
		d.outDir = abs
	}
	if opts.TempDir == "" {
		// Named, not created: DuckDB creates it on its first spill, so a
		// query that never spills leaves nothing behind even if this
		// process is killed.
		var b [8]byte
		rand.Read(b[:])
		dir := filepath.Join(os.TempDir(), "lakehouse-duckdb-"+hex.EncodeToString(b[:]))
		opts.TempDir, d.tmp = dir, dir
	}
	set["temp_directory"] = opts.TempDir
	for k, v := range set {
		if bindings.SetConfig(cfg, k, v) == bindings.StateError {
			d.removeTemp()
			return nil, fmt.Errorf("duckdb: setting %s=%s", k, v)
		}
	}
	var errMsg string
	if bindings.OpenExt("", &d.db, cfg, &errMsg) == bindings.StateError {
		d.removeTemp()
		return nil, fmt.Errorf("duckdb: opening: %s", errMsg)
	}
	if bindings.Connect(d.db, &d.conn) == bindings.StateError {
		bindings.Close(&d.db)
		d.removeTemp()
		return nil, fmt.Errorf("duckdb: connecting")
	}
	return d, nil
}

func (d *DB) removeTemp() {
	if d.tmp != "" {
		os.RemoveAll(d.tmp)
	}
}

// Close releases the database. A reader returned by Query must be released
// first.
func (d *DB) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	bindings.Disconnect(&d.conn)
	bindings.Close(&d.db)
	d.removeTemp()
	d.mu.Unlock()
	if d.onClose != nil {
		d.onClose()
	}
	return nil
}

// Exec runs a statement of the caller's own (setup, never user SQL: that
// goes through Query after Lock). After Lock it runs inside the sandbox.
func (d *DB) Exec(stmt string) error { return d.exec(stmt) }

// exec runs a setup statement.
func (d *DB) exec(stmt string) error {
	var res bindings.Result
	defer bindings.DestroyResult(&res)
	if bindings.Query(d.conn, stmt, &res) == bindings.StateError {
		return fmt.Errorf("duckdb: %s", bindings.ResultError(&res))
	}
	return nil
}

// SetThreads sets the DB's thread count (see StreamThreads); call it
// before Lock.
func (d *DB) SetThreads(n int) error {
	if d.locked {
		return fmt.Errorf("duckdb: SetThreads after Lock")
	}
	return d.exec(fmt.Sprintf("SET threads=%d", max(n, 1)))
}

// Column is a column of a view: a name and a DuckDB type ("BIGINT").
type Column struct {
	Name, Type string
}

// CreateView creates schema.name as a view over the Parquet files, with
// exactly columns, cast to their types. No files gives an empty view of
// the same columns. Files are read by column position (Iceberg writers
// keep the table's column order, and file column names may be sanitized),
// unless unionByName is set: then by name, for tables whose older files
// have other columns, which are filled with NULL. It must precede Lock.
func (d *DB) CreateView(schema, name string, columns []Column, files []string, unionByName bool) error {
	if d.locked {
		return fmt.Errorf("duckdb: CreateView after Lock")
	}
	if err := d.exec("CREATE SCHEMA IF NOT EXISTS " + Ident(schema)); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("CREATE VIEW " + Ident(schema) + "." + Ident(name) + " AS SELECT ")
	for i, c := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		src := "f." + Ident(c.Name)
		if len(files) == 0 {
			src = "NULL"
		}
		fmt.Fprintf(&b, "CAST(%s AS %s) AS %s", src, c.Type, Ident(c.Name))
	}
	if len(columns) == 0 {
		b.WriteString("NULL AS no_columns")
	}
	if len(files) == 0 {
		b.WriteString(" WHERE false")
		return d.exec(b.String())
	}
	b.WriteString(" FROM read_parquet([")
	for i, f := range files {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(Literal(f))
	}
	b.WriteString("]")
	if unionByName {
		b.WriteString(", union_by_name=true) AS f")
	} else {
		b.WriteString(") AS f(")
		for i, c := range columns {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(Ident(c.Name))
		}
		b.WriteString(")")
	}
	return d.exec(b.String())
}

// Lock switches the sandbox on before user SQL runs: the search path is
// schema, only files are readable (and Options.OutputDir, if set, readable
// and writable), every other file system, network and extension access is
// off, and no setting can change any more.
func (d *DB) Lock(schema string, files []string) error {
	if err := d.exec("CREATE SCHEMA IF NOT EXISTS " + Ident(schema)); err != nil {
		return err
	}
	lits := make([]string, len(files))
	for i, f := range files {
		lits[i] = Literal(f)
	}
	var dirs string
	if d.outDir != "" {
		dirs = Literal(d.outDir)
	}
	// One call for all: each is a round of DuckDB's parser and planner,
	// on every query's path. DuckDB runs them in order and stops at the
	// first that fails.
	if err := d.exec(strings.Join([]string{
		"SET schema=" + Literal(schema),
		"SET allowed_paths=[" + strings.Join(lits, ", ") + "]",
		"SET allowed_directories=[" + dirs + "]",
		"SET enable_external_access=false",
		"SET allow_community_extensions=false",
		"SET lock_configuration=true",
	}, ";\n")); err != nil {
		return err
	}
	d.locked = true
	return nil
}

// interrupt stops the running query, if the database is still open.
func (d *DB) interrupt() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		bindings.Interrupt(d.conn)
	}
}

// interruptEvery is how often a cancelled query is interrupted again.
const interruptEvery = 50 * time.Millisecond

// interruptOnCancel interrupts the DB's query once ctx is done, and again
// every interruptEvery until done is closed: DuckDB clears the interrupt
// flag when a statement starts, so one interrupt that lands between
// Prepare and Execute (or between the statements of CopyParquet) would be
// lost and the query would run to its end (duckdb-go's
// runWithCtxInterrupt repeats it for the same reason). The channel it
// returns is closed once it stopped interrupting: a DB reused by another
// query (Pool.Put) must not be interrupted on behalf of the last one.
func (d *DB) interruptOnCancel(ctx context.Context, done <-chan struct{}) <-chan struct{} {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		t := time.NewTicker(interruptEvery)
		defer t.Stop()
		for {
			d.interrupt()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return stopped
}

// Ident quotes a SQL identifier.
func Ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Literal quotes a SQL string literal.
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Query runs sql (one SELECT statement; the caller has checked it) and
// streams its result. Cancelling ctx interrupts the query. Errors from
// DuckDB (unknown column, type errors, the sandbox) are *Error values of
// class errdefs.ErrInvalidArgument; the reader's Err reports errors that
// happen while streaming.
func (d *DB) Query(ctx context.Context, sql string) (*Reader, error) {
	if !d.locked {
		return nil, fmt.Errorf("duckdb: Query before Lock")
	}
	r := &Reader{db: d, ctx: ctx, refs: 1, done: make(chan struct{})}
	r.stopped = d.interruptOnCancel(ctx, r.done)
	if bindings.Prepare(d.conn, sql, &r.stmt) == bindings.StateError {
		err := newError(bindings.PrepareError(r.stmt), sql)
		r.free()
		return nil, ctxErr(ctx, err)
	}
	var pending bindings.PendingResult
	if bindings.PendingPreparedStreaming(r.stmt, &pending) == bindings.StateError {
		err := newError(bindings.PendingError(pending), sql)
		bindings.DestroyPending(&pending)
		r.free()
		return nil, ctxErr(ctx, err)
	}
	state := bindings.ExecutePending(pending, &r.res)
	bindings.DestroyPending(&pending)
	r.hasRes = true
	if state == bindings.StateError {
		err := newError(bindings.ResultError(&r.res), sql)
		r.free()
		return nil, ctxErr(ctx, err)
	}
	if err := r.init(); err != nil {
		r.free()
		return nil, err
	}
	return r, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Error is an error DuckDB reported for a query.
type Error struct {
	// Type is DuckDB's error type ("Binder", "Parser", "Permission", …).
	Type string
	// Msg is the message for people, with DuckDB's position marker.
	Msg string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, errdefs.ErrInvalidArgument) hold: the query
// is at fault.
func (e *Error) Unwrap() error { return errdefs.ErrInvalidArgument }

// SandboxHint ends the errors of statements the sandbox refuses.
const SandboxHint = "queries can read catalog tables only (no files, COPY, ATTACH, INSTALL/LOAD or settings)"

// newError turns DuckDB's message into an *Error with a clear message for
// what the sandbox refuses.
func newError(msg, sql string) error {
	typ, rest, ok := strings.Cut(msg, " Error: ")
	if !ok {
		typ, rest = "", msg
	}
	e := &Error{Type: typ, Msg: strings.TrimRight(msg, "\n")}
	switch {
	case typ == "Permission" || strings.Contains(rest, "disabled by configuration") || strings.Contains(rest, "disabled through configuration"):
		e.Msg = "not allowed: " + firstLine(rest) + "; " + SandboxHint
	case strings.Contains(rest, "the configuration has been locked"):
		e.Msg = "not allowed: " + firstLine(rest) + "; " + SandboxHint
	}
	return e
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
