package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/array"
	urfave "github.com/urfave/cli/v2"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// defaultTableRows is how many rows -O table shows without --max-rows or
// --all-rows.
const defaultTableRows = 10

// queryCommand is `lakehouse query`.
func (e *Env) queryCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "query",
		Usage:     "run SQL on catalog tables at a ref",
		ArgsUsage: "SQL",
		Description: "Runs one SELECT query in a fresh DuckDB that can read only the catalog tables\n" +
			"it names, at the ref (-r, default: the active branch). Unqualified table names\n" +
			"are in the namespace -n (default: the profile's namespace). DEFAULT is an SQL\n" +
			"keyword: name the default namespace's tables \"default\".t, or t alone.\n\n" +
			"-O table (default) shows 10 rows unless --max-rows N or --all-rows; csv, json,\n" +
			"jsonl, parquet, arrow (IPC file, Feather v2) and arrows (IPC stream) write\n" +
			"every row; decimals stay exact (strings in JSON), timestamps are RFC 3339. --explain prints the plan:\n" +
			"resolved commit, snapshots, files kept and pruned, pushed-down columns and filters.",
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read the SQL from `FILE` (- for stdin)"},
			refFlag(),
			&urfave.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "namespace of unqualified table names (default: the profile's)"},
			&urfave.IntFlag{Name: "max-rows", Value: -1, Usage: "output at most `N` rows", DefaultText: "10 for -O table, else all"},
			&urfave.BoolFlag{Name: "all-rows", Usage: "output every row (-O table)"},
			&urfave.StringFlag{Name: "output", Aliases: []string{"O"}, Usage: "output format: table, csv, json, jsonl, parquet, arrow or arrows"},
			&urfave.StringFlag{Name: "out", Usage: "write the result to `FILE` (created only when the query succeeds; without -O, its extension names the format)"},
			&urfave.BoolFlag{Name: "explain", Usage: "print the plan instead of running the query"},
		},
		Action: e.query,
	}
}

func (e *Env) query(c *urfave.Context) error {
	start := e.clock()
	args, err := positional(c, "[SQL]")
	if err != nil {
		return err
	}
	sqlText, err := e.querySQL(c, args)
	if err != nil {
		return err
	}
	format := c.String("output")
	if format == "" {
		format = formatOfPath(c.String("out"))
	}
	if format == "" {
		format = e.Output
	}
	if format != outputTable && !slices.Contains(query.Formats, format) {
		return usageError(c, "invalid output format %q: use table, csv, json, jsonl, parquet, arrow or arrows", format)
	}
	limit := int64(c.Int("max-rows"))
	if c.IsSet("max-rows") && limit < 0 {
		return usageError(c, "--max-rows must be 0 or more")
	}
	if c.Bool("all-rows") {
		if c.IsSet("max-rows") {
			return usageError(c, "--max-rows and --all-rows exclude each other")
		}
		limit = -1
	} else if !c.IsSet("max-rows") && format == outputTable {
		limit = defaultTableRows
	}
	binary := format == query.FormatParquet || format == query.FormatArrow || format == query.FormatArrows
	if binary && c.String("out") == "" && e.StdoutTTY {
		return usageError(c, "-O %s writes binary data; use --out FILE or redirect stdout", format)
	}
	ref, err := e.readRef(c.String("ref"))
	if err != nil {
		return err
	}
	ns, err := e.namespace(c.String("namespace"))
	if err != nil {
		return err
	}
	remote, err := e.remoteClient()
	if err != nil {
		return err
	}
	if remote != nil {
		return e.remoteQuery(c, remote, flight.QueryCommand{SQL: sqlText, Ref: refText(ref), Namespace: string(ns)}, format, limit, start)
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	scans, err := e.tableScans(c.Context)
	if err != nil {
		return err
	}
	req := query.Request{SQL: sqlText, Ref: ref, Namespace: ns}
	if c.Bool("explain") {
		plan, err := query.Plan(iceberg.PlanOnly(c.Context), svc, scans, req)
		if err != nil {
			return queryFailed(err)
		}
		if format == outputJSON {
			enc := json.NewEncoder(e.Stdout)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			return enc.Encode(viewPlan(plan))
		}
		return plansql.Explain(e.Stdout, plan)
	}
	if format == query.FormatParquet {
		plan, err := query.Plan(c.Context, svc, scans, req)
		if err != nil {
			return queryFailed(err)
		}
		return e.exportParquet(c, plan, limit, start)
	}
	res, err := query.Run(c.Context, svc, scans, req)
	if err != nil {
		return queryFailed(err)
	}
	defer res.Close()
	return e.writeResult(c, res.Reader, format, limit, start)
}

// remoteQuery runs a query on the server and writes its rows as a local
// query would.
func (e *Env) remoteQuery(c *urfave.Context, remote *flight.Client, q flight.QueryCommand, format string, limit int64, start time.Time) error {
	if c.Bool("explain") {
		ex, err := remote.Explain(c.Context, q)
		if err != nil {
			return queryFailed(err)
		}
		if format == outputJSON {
			var b bytes.Buffer
			if err := json.Indent(&b, ex.Plan, "", "  "); err != nil {
				return err
			}
			b.WriteByte('\n')
			_, err = b.WriteTo(e.Stdout)
			return err
		}
		_, err = io.WriteString(e.Stdout, ex.Text)
		return err
	}
	r, err := remote.Query(c.Context, q)
	if err != nil {
		return queryFailed(err)
	}
	defer r.Release()
	return e.writeResult(c, r, format, limit, start)
}

// refText is a ref as the server reads it ("" for none).
func refText(r catalog.Ref) string {
	if r == (catalog.Ref{}) {
		return ""
	}
	return r.String()
}

// querySQL is the SQL of the positional argument or of -f.
func (e *Env) querySQL(c *urfave.Context, args []string) (string, error) {
	file := c.String("file")
	switch {
	case file != "" && len(args) > 0:
		return "", usageError(c, "give the SQL as an argument or with -f, not both")
	case file == "" && len(args) == 0:
		return "", usageError(c, "missing argument SQL (or -f FILE)")
	case file == "":
		return args[0], nil
	}
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(e.Stdin, plansql.MaxQueryBytes+1))
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return "", fileError("read", file, err)
	}
	if !utf8.Valid(b) {
		return "", errdefs.New(errdefs.ErrInvalidArgument, "%s is not UTF-8 text", file)
	}
	return string(b), nil
}

// writeResult renders the stream: a table with a footer, or a format
// streamed to stdout or to --out.
func (e *Env) writeResult(c *urfave.Context, r array.RecordReader, format string, limit int64, start time.Time) error {
	out := c.String("out")
	if out == "" {
		if format == outputTable {
			return e.writeTable(e.Stdout, r, limit, start)
		}
		_, err := query.Write(e.Stdout, r, format, limit)
		return queryFailed(err)
	}
	// Write next to the target and rename on success, so a failed query
	// leaves no partial file.
	tmp, err := createBeside(out)
	if err != nil {
		return fileError("create", out, pathErr(err))
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var rows int64
	if format == outputTable {
		err = e.writeTable(tmp, r, limit, start)
	} else {
		var st query.WriteStats
		st, err = query.Write(tmp, r, format, limit)
		rows = st.Rows
	}
	if err != nil {
		return queryFailed(err)
	}
	if err := tmp.Close(); err != nil {
		return fileError("write", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fileError("write", out, err)
	}
	ok = true
	if format != outputTable {
		e.wrote(rows, out, start)
	}
	return nil
}

// wrote reports a result written to --out.
func (e *Env) wrote(rows int64, out string, start time.Time) {
	fmt.Fprintf(e.Stderr, "wrote %s to %s · %s\n", plural(rows, "row", "rows"), out, query.Elapsed(e.clock().Sub(start)))
}

// pathErr is err without the path of a temporary file, so that the error
// names the target instead.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// exportParquet writes a local query's result as Parquet with DuckDB's
// own parallel writer (query.ExportParquet): into a private directory
// beside --out, the one the query's sandbox may write, then renamed onto
// it, so a failed query leaves no partial file; without --out, through a
// private temporary directory to stdout. Over a server the rows arrive as
// Arrow and writeResult writes them with the Arrow writer.
func (e *Env) exportParquet(c *urfave.Context, plan *plansql.Plan, limit int64, start time.Time) error {
	out := c.String("out")
	if out == "" {
		_, err := query.ExportParquetTo(c.Context, plan, e.Stdout, limit)
		return queryFailed(err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return fileError("create", out, pathErr(err))
	}
	defer os.RemoveAll(dir)
	st, err := query.ExportParquet(c.Context, plan, dir, limit)
	if err != nil {
		return queryFailed(err)
	}
	if err := os.Rename(filepath.Join(dir, query.ExportFile), out); err != nil {
		return fileError("write", out, pathErr(err))
	}
	e.wrote(st.Rows, out, start)
	return nil
}

// formatOfPath is the output format a file name asks for by its extension
// (x.parquet, x.arrow...), or "" for another one.
func formatOfPath(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return query.FormatCSV
	case ".json":
		return query.FormatJSON
	case ".jsonl", ".ndjson":
		return query.FormatJSONL
	case ".parquet":
		return query.FormatParquet
	case ".arrow", ".feather":
		return query.FormatArrow
	case ".arrows":
		return query.FormatArrows
	}
	return ""
}

// createBeside creates a new temporary file in out's folder with mode 0666
// less the umask, as os.Create would create out itself (os.CreateTemp
// would make it 0600).
func createBeside(out string) (*os.File, error) {
	dir, base := filepath.Dir(out), filepath.Base(out)
	for try := 0; ; try++ {
		name := filepath.Join(dir, fmt.Sprintf(".%s.tmp-%d", base, rand.Uint64()))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) && try < 100 {
			continue
		}
		return f, err
	}
}

// writeTable renders up to limit rows as an aligned table and a footer
// with the total row count (the rest of the stream is counted, not
// rendered) and the elapsed time.
func (e *Env) writeTable(w io.Writer, r array.RecordReader, limit int64, start time.Time) error {
	var header []string
	for _, f := range r.Schema().Fields() {
		header = append(header, f.Name)
	}
	t := e.newTable(header...)
	var total int64
	for r.Next() {
		rec := r.RecordBatch()
		n := rec.NumRows()
		for i := int64(0); i < n && (limit < 0 || total+i < limit); i++ {
			cells := make([]string, rec.NumCols())
			for j, col := range rec.Columns() {
				if col.IsNull(int(i)) {
					cells[j] = "NULL"
				} else {
					// Copied: string cells point into the batch, which
					// the next batch replaces.
					cells[j] = strings.Clone(query.TableCell(query.FormatValue(col, int(i)), 60))
				}
			}
			t.row(cells...)
		}
		total += n
	}
	if err := r.Err(); err != nil {
		return queryFailed(err)
	}
	if len(header) > 0 {
		if err := t.write(w); err != nil {
			return err
		}
	}
	footer := plural(total, "row", "rows")
	if shown := int64(len(t.rows)); shown < total {
		footer += fmt.Sprintf(" (showing %d)", shown)
	}
	footer += " · " + query.Elapsed(e.clock().Sub(start))
	_, err := fmt.Fprintln(w, footer)
	return err
}

// clock is the command's clock: the test clock when set.
func (e *Env) clock() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// queryFailed maps an error of the query path to the CLI's exit codes: an
// unknown ref or table stays "not found" (3); a query that does not parse
// or that DuckDB rejects is a failed query (1), not a usage error.
func queryFailed(err error) error {
	if err == nil {
		return nil
	}
	switch errdefs.Class(err) {
	case errdefs.ErrNotFound, errdefs.ErrUnavailable, errdefs.ErrPermissionDenied:
		return err
	}
	return &failedQueryError{err: err}
}

// failedQueryError is a query that failed: exit code 1. It keeps the
// message and drops the class, so errdefs.ExitCode falls back to 1.
type failedQueryError struct{ err error }

func (e *failedQueryError) Error() string { return e.err.Error() }
func (e *failedQueryError) ExitCode() int { return errdefs.ExitFailed }

// planView is --explain -O json.
type planView struct {
	Ref       string          `json:"ref"`
	Commit    string          `json:"commit"`
	Namespace string          `json:"namespace"`
	Tables    []tableScanView `json:"tables"`
}

type tableScanView struct {
	Table       string   `json:"table"`
	SnapshotID  int64    `json:"snapshot_id"`
	Files       []string `json:"files"`
	FilesTotal  int      `json:"files_total"`
	FilesPruned int      `json:"files_pruned"`
	Rows        int64    `json:"rows"`
	Columns     []string `json:"columns"`
	Filters     []string `json:"filters"`
	// Cache: how a remote warehouse's files were fetched (scan cache).
	Cache string `json:"cache,omitempty"`
}

func viewPlan(p *plansql.Plan) planView {
	v := planView{Ref: p.Ref.String(), Commit: commitID(p.Commit), Namespace: string(p.Namespace), Tables: []tableScanView{}}
	for _, t := range p.Tables {
		v.Tables = append(v.Tables, tableScanView{
			Table: t.Ident.String(), SnapshotID: t.SnapshotID, Files: nonNil(t.Files),
			FilesTotal: t.TotalFiles, FilesPruned: t.TotalFiles - len(t.Files), Rows: t.Records,
			Columns: t.Columns, Filters: nonNil(t.Filters), Cache: t.Cache,
		})
	}
	return v
}
