package query_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// parquetTable reads a Parquet file as its Arrow schema (metadata
// dropped, UTC zones spelled "UTC") and its rows as text.
func parquetTable(t *testing.T, path string) (*arrow.Schema, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, parquet.NewReaderProperties(memory.DefaultAllocator),
		pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	var fields []arrow.Field
	for _, fld := range tbl.Schema().Fields() {
		// DuckDB names a TIMESTAMPTZ result's zone by its TimeZone
		// setting, which the Arrow writer keeps; DuckDB's Parquet has
		// isAdjustedToUTC, read back as "UTC": the same instants.
		if ts, ok := fld.Type.(*arrow.TimestampType); ok && ts.TimeZone == "Etc/UTC" {
			fld.Type = &arrow.TimestampType{Unit: ts.Unit, TimeZone: "UTC"}
		}
		fld.Metadata = arrow.Metadata{}
		fields = append(fields, fld)
	}
	rr := array.NewTableReader(tbl, 1024)
	defer rr.Release()
	return arrow.NewSchema(fields, nil), readRows(t, rr)
}

// TestExportParquetMatchesWrite: the file DuckDB writes (ExportParquet)
// holds the columns, types and rows of the file Write's Arrow writer
// writes, for the catalog's column types, computed ones DuckDB stores
// otherwise (HUGEINT sums, UUID, intervals), and a result that needs the
// Arrow writer (a list).
func TestExportParquetMatchesWrite(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, c := range []struct {
		name, sql string
		limit     int64
	}{
		{"table", "SELECT * FROM sales.tx ORDER BY id", -1},
		{"limit", "SELECT * FROM sales.tx ORDER BY id DESC", 7},
		{"events", "SELECT * FROM events ORDER BY id", -1},
		{"quoted names", `SELECT id, "Full Name", country FROM sales.VipCustomers ORDER BY id`, -1},
		{"aggregates", "SELECT country, count(*) AS n, sum(usd::DECIMAL(18,2)) AS usd, avg(id) AS a, sum(id) AS ids FROM sales.tx GROUP BY country ORDER BY country", -1},
		{"empty", "SELECT * FROM sales.empty_tx", -1},
		{"computed", "SELECT id, 'c2b7e2a4-3e9f-4c1e-9a53-1a2b3c4d5e6f'::UUID AS u, '{\"a\": 1}'::JSON AS j, " +
			"INTERVAL (id) MINUTE AS iv, day::TIMESTAMPTZ AS tz, 1::UBIGINT AS ub FROM sales.tx ORDER BY id", -1},
		{"arrow writer", "SELECT country, list(id ORDER BY id) AS ids FROM sales.tx GROUP BY country ORDER BY country", -1},
		{"sample", sampleSQL, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			req := query.Request{SQL: c.sql, Ref: catalog.Ref{Name: "main"}}
			res, err := query.Run(ctx, f.svc, scans, req)
			if err != nil {
				t.Fatal(err)
			}
			w, err := os.Create(filepath.Join(dir, "arrow.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := query.Write(w, res.Reader, query.FormatParquet, c.limit)
			res.Close()
			if err != nil {
				t.Fatal(err)
			}
			w.Close()
			plan, err := query.Plan(ctx, f.svc, scans, req)
			if err != nil {
				t.Fatal(err)
			}
			exp := filepath.Join(dir, "export")
			if err := os.Mkdir(exp, 0o700); err != nil {
				t.Fatal(err)
			}
			got, err := query.ExportParquet(ctx, plan, exp, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got.Rows != want.Rows {
				t.Errorf("ExportParquet wrote %d rows, Write %d", got.Rows, want.Rows)
			}
			ws, wrows := parquetTable(t, filepath.Join(dir, "arrow.parquet"))
			gs, grows := parquetTable(t, filepath.Join(exp, query.ExportFile))
			if !gs.Equal(ws) {
				t.Errorf("schemas differ:\nDuckDB's %s\nArrow's  %s", gs, ws)
			}
			if strings.Join(grows, "\n") != strings.Join(wrows, "\n") {
				t.Errorf("rows differ:\nDuckDB's\n%s\nArrow's\n%s", strings.Join(grows, "\n"), strings.Join(wrows, "\n"))
			}
		})
	}
}

// TestExportParquetSandbox: through the query path, the SQL still cannot
// write, read or reconfigure anything: the output directory holds nothing
// after a refused query, and nothing appears beside it.
func TestExportParquetSandbox(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	parent := t.TempDir()
	evil := filepath.Join(parent, "evil.csv")
	for _, sql := range []string{
		"COPY (SELECT 1) TO " + quote(evil) + " (FORMAT csv)",
		"SELECT 1 AS x) TO " + quote(evil) + " (FORMAT csv); --",
		"SELECT 1 AS x; COPY (SELECT 1) TO " + quote(evil),
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT * FROM glob(" + quote(parent+"/*") + ")",
		"ATTACH " + quote(filepath.Join(parent, "x.db")),
		"SET allowed_directories=['/']",
		"SELECT * FROM sales.tx; SET enable_external_access=true",
	} {
		dir, err := os.MkdirTemp(parent, ".out-")
		if err != nil {
			t.Fatal(err)
		}
		plan, err := query.Plan(ctx, f.svc, scans, query.Request{SQL: sql, Ref: catalog.Ref{Name: "main"}})
		if err == nil {
			_, err = query.ExportParquet(ctx, plan, dir, -1)
		}
		if err == nil {
			t.Errorf("%s: not refused", sql)
			continue
		}
		t.Logf("%s: %v", sql, err)
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: the output directory holds %d entries", sql, len(ents))
		}
		os.Remove(dir)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("%s holds %d entries after refused queries", parent, len(ents))
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// TestExportParquetUmask: the file DuckDB creates has mode 0666 less the
// umask, as os.Create gives.
func TestExportParquetUmask(t *testing.T) {
	f := newFixture(t)
	plan, err := query.Plan(context.Background(), f.svc, scans, query.Request{SQL: "SELECT * FROM sales.tx", Ref: catalog.Ref{Name: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, umask := range []int{0o022, 0o002, 0o077} {
		dir := t.TempDir()
		old := syscall.Umask(umask)
		_, err := query.ExportParquet(context.Background(), plan, dir, -1)
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, query.ExportFile))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.Mode().Perm(), os.FileMode(0o666&^umask); got != want {
			t.Errorf("umask %04o: mode %04o, want %04o", umask, got, want)
		}
	}
}
