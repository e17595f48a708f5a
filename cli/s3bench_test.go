package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

const (
	s3BenchRows = 10_000_000
	// s3BenchQuery reads 2 of the table's 6 columns.
	s3BenchQuery = "SELECT country, sum(amount) AS total FROM bench.sales GROUP BY country ORDER BY country"
	// s3BenchSelective reads 10,000 rows of one row group.
	s3BenchSelective = "SELECT count(*) AS n, sum(amount) AS total FROM bench.sales WHERE id BETWEEN 5000000 AND 5009999"
)

// cachedBytes is what the scan cache in dir holds (what was fetched into
// it since it was emptied).
func cachedBytes(b *testing.B, dir string) int64 {
	b.Helper()
	c, err := scancache.Open(dir, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ents, err := c.List()
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		n += e.Cached
	}
	return n
}

// s3BenchParquet returns a 10M-row, 6-column Parquet file written by
// DuckDB, generated once and kept under os.TempDir()/lakehouse-bench.
func s3BenchParquet(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "lakehouse-bench")
	path := filepath.Join(dir, "s3query-10m.parquet")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	db, err := duckdb.Open(duckdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tmp := path + ".tmp"
	defer os.Remove(tmp)
	err = db.Exec(`COPY (SELECT i AS id, CAST((i % 100000) / 100 AS DECIMAL(18, 2)) AS amount,
  ['DE','FR','IT','ES','NL','PL','SE','US'][i % 8 + 1] AS country,
  DATE '2024-01-01' + CAST(i % 366 AS INTEGER) AS day,
  hash(i) % 1000000 AS customer, 'note ' || (i % 5000) AS note
FROM range(` + strconv.Itoa(s3BenchRows) + `) t(i)) TO ` + duckdb.Literal(tmp) + ` (FORMAT parquet, COMPRESSION snappy)`)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// s3BenchEnv is a data directory with src imported as bench.sales on
// tester.dev; extra is the environment naming its warehouse (nil: the
// local one).
func s3BenchEnv(b *testing.B, src string, extra map[string]string) *lakehouseEnv {
	b.Helper()
	dataDir := b.TempDir()
	le := &lakehouseEnv{dataDir: dataDir, env: map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}}
	for k, v := range extra {
		le.env[k] = v
	}
	for _, args := range [][]string{
		{"checkout", "-b", "tester.dev"},
		{"namespace", "create", "bench"},
		{"table", "import", "bench.sales", "--from", src},
	} {
		s3BenchLH(b, le, args...)
	}
	return le
}

func s3BenchLH(b *testing.B, le *lakehouseEnv, args ...string) string {
	b.Helper()
	out, errOut, code := le.lh(args...)
	if code != 0 {
		b.Fatalf("lakehouse %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// BenchmarkS3Query: an aggregate over 2 columns of a 10M-row table, run
// by the in-process CLI's query command: on MinIO with the scan cache
// emptied before each query (cold), on MinIO with the columns cached
// (warm), and on a local warehouse. The goal is warm within 1.1x of local;
// local reports the ratio, cold the bytes fetched against the file size.
func BenchmarkS3Query(b *testing.B) {
	src := s3BenchParquet(b)
	srv := miniotest.Start(b)
	s3 := s3BenchEnv(b, src, map[string]string{envWarehouse: "s3://" + srv.Bucket + "/bench", envS3Endpoint: srv.Endpoint})
	local := s3BenchEnv(b, src, nil)
	want := s3BenchLH(b, local, "query", s3BenchQuery, "-O", "csv")
	if strings.Count(want, "\n") != 9 {
		b.Fatalf("local result:\n%s", want)
	}
	scanDir := filepath.Join(s3.dataDir, "cache", "scan")
	query := func(b *testing.B, le *lakehouseEnv) {
		if got := s3BenchLH(b, le, "query", s3BenchQuery, "-O", "csv"); got != want {
			b.Fatalf("result:\n%s\nwant:\n%s", got, want)
		}
	}
	perOp := map[string]time.Duration{}
	b.Run("cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := os.RemoveAll(scanDir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			query(b, s3)
		}
		b.StopTimer()
		c, err := scancache.Open(scanDir, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ents, err := c.List()
		if err != nil {
			b.Fatal(err)
		}
		var cached, size int64
		for _, e := range ents {
			cached += e.Cached
			size += e.Size
		}
		if size == 0 {
			b.Fatal("the cold query cached nothing")
		}
		b.ReportMetric(float64(cached), "fetched-B")
		b.ReportMetric(float64(cached)/float64(size), "x-file")
		b.Logf("%d data file(s), %d bytes; a cold query fetched %d bytes (%.3fx)", len(ents), size, cached, float64(cached)/float64(size))
	})
	b.Run("warm", func(b *testing.B) {
		query(b, s3)
		// Past the scan cache's settle time, cached files are trusted
		// without a full verification.
		time.Sleep(300 * time.Millisecond)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			query(b, s3)
		}
		perOp["warm"] = b.Elapsed() / time.Duration(b.N)
	})
	// A selective filter on id (sorted, so each row group holds one
	// range): the cold query fetches the one row group it can match.
	b.Run("selective-cold", func(b *testing.B) {
		want := s3BenchLH(b, local, "query", s3BenchSelective, "-O", "csv")
		var fetched, whole int64
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := os.RemoveAll(scanDir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if got := s3BenchLH(b, s3, "query", s3BenchSelective, "-O", "csv"); got != want {
				b.Fatalf("result:\n%s\nwant:\n%s", got, want)
			}
			b.StopTimer()
			fetched = cachedBytes(b, scanDir)
			// The same columns without the filter, for comparison.
			s3BenchLH(b, s3, "query", "SELECT sum(amount) FROM bench.sales WHERE id >= 0", "-O", "csv")
			whole = cachedBytes(b, scanDir)
			b.StartTimer()
		}
		b.ReportMetric(float64(fetched), "fetched-B")
		b.ReportMetric(float64(fetched)/float64(whole), "x-columns")
		b.Logf("a selective query fetched %d bytes; the same columns unfiltered %d bytes (%.3fx)", fetched, whole, float64(fetched)/float64(whole))
	})
	b.Run("local", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			query(b, local)
		}
		perOp["local"] = b.Elapsed() / time.Duration(b.N)
		if perOp["warm"] > 0 {
			b.ReportMetric(float64(perOp["warm"])/float64(perOp["local"]), "warm/local")
		}
	})
}
