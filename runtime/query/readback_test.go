package query_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// sampleSQL has a value of each kind a format may lose: a decimal wider
// than a double, timestamps with and without a zone, intervals, NULL
// beside the empty string. testdata/readback.py holds the values it must
// read back.
const sampleSQL = `SELECT * FROM (VALUES
	(1, 12345678901234567890.123456789::DECIMAL(38,9), -0.5::DECIMAL(4,2),
	 TIMESTAMP '2024-01-02 03:04:05.123456', TIMESTAMPTZ '2024-01-02 03:04:05.5+02',
	 INTERVAL '1 year 2 days 3 hours 4.5 seconds', 'text', DATE '2024-02-29'),
	(2, -1::DECIMAL(38,9), 0::DECIMAL(4,2),
	 TIMESTAMP '1969-12-31 23:59:59', TIMESTAMPTZ '2000-01-01 00:00:00+00',
	 INTERVAL '-1 month 1 microsecond', '', DATE '1970-01-01'),
	(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) t(id, big, small, ts, tz, iv, s, d) ORDER BY id`

// TestFormatsReadBack writes sampleSQL's result in every format, and as
// Parquet also with ExportParquet, and reads each back with pyarrow and
// pandas (testdata/readback.py), which compare values and types exactly. $PYTHON (default python3) needs pyarrow and
// pandas; scripts/test.sh installs them.
func TestFormatsReadBack(t *testing.T) {
	py := os.Getenv("PYTHON")
	if py == "" {
		py = "python3"
	}
	if err := exec.Command(py, "-c", "import pyarrow, pandas").Run(); err != nil {
		t.Fatalf("%s cannot import pyarrow and pandas (scripts/test.sh installs them): %v", py, err)
	}
	svc := openService(t, t.TempDir(), time.Now)
	dir := t.TempDir()
	for _, format := range query.Formats {
		res, err := query.Run(context.Background(), svc, scans, query.Request{SQL: sampleSQL, Ref: catalog.Ref{Name: "main"}})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, "out."+format))
		if err != nil {
			t.Fatal(err)
		}
		st, err := query.Write(f, res.Reader, format, -1)
		res.Close()
		if err != nil || st.Rows != 3 {
			t.Fatalf("%s: %d rows, %v", format, st.Rows, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The Parquet file DuckDB writes itself (the CLI's -O parquet).
	plan, err := query.Plan(context.Background(), svc, scans, query.Request{SQL: sampleSQL, Ref: catalog.Ref{Name: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	exp := t.TempDir()
	st, err := query.ExportParquet(context.Background(), plan, exp, -1)
	if err != nil || st.Rows != 3 {
		t.Fatalf("ExportParquet: %d rows, %v", st.Rows, err)
	}
	if err := os.Rename(filepath.Join(exp, query.ExportFile), filepath.Join(dir, "out.export.parquet")); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, filepath.Join("testdata", "readback.py"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("readback.py: %v\n%s", err, out)
	}
}
