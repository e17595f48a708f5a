package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
)

// s3Env is a lakehouseEnv whose catalog keeps its tables on MinIO.
func s3Env(t *testing.T, srv *miniotest.Server, prefix string) *lakehouseEnv {
	t.Helper()
	return newLakehouseEnvWith(t, launchers.Process, "", map[string]string{
		envWarehouse: "s3://" + srv.Bucket + "/" + prefix, envS3Endpoint: srv.Endpoint})
}

// objectCount counts the objects under prefix in the server's bucket.
func objectCount(t *testing.T, srv *miniotest.Server, prefix string) int {
	t.Helper()
	out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &srv.Bucket, Prefix: &prefix})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Contents)
}

func (le *lakehouseEnv) count(sql string, args ...string) string {
	le.t.Helper()
	return strings.TrimSpace(le.mustLH(append([]string{"query", sql, "-O", "csv"}, args...)...))
}

// TestS3WarehouseEndToEnd: import, query, run, merge, revert and time
// travel on a catalog whose warehouse is on S3 (MinIO); nothing is
// written to the local default warehouse.
func TestS3WarehouseEndToEnd(t *testing.T) {
	srv := miniotest.Start(t)
	le := s3Env(t, srv, "e2e")
	if n := objectCount(t, srv, "e2e/sales/"); n == 0 {
		t.Fatal("the import wrote nothing to the bucket")
	}
	if ents, _ := os.ReadDir(filepath.Join(le.dataDir, "warehouse")); len(ents) != 0 {
		t.Fatalf("the local warehouse has %d entries", len(ents))
	}
	// Later commands use the stored warehouse without the flag.
	delete(le.env, envWarehouse)
	rows := le.count("SELECT count(*) AS n FROM sales.transactions")
	if rows == "n\n0" || !strings.HasPrefix(rows, "n\n") {
		t.Fatalf("count: %q", rows)
	}
	start := le.mustLH("branch", "get", "tester.dev", "-O", "json")

	le.mustLH("run", "-p", testdataDir(t, "pipelines", "e2e"))
	le.checkReport("tester.dev", 5)
	le.mustLH("merge", "tester.dev", "--into", "main")
	le.checkReport("main", 5)

	// Time travel to before the run, and a revert.
	var head struct {
		Head string `json:"head"`
	}
	mustJSON(t, start, &head)
	if got := le.count("SELECT count(*) AS n FROM sales.transactions", "-r", "@"+head.Head); got != rows {
		t.Fatalf("time travel: %q, want %q", got, rows)
	}
	// An import from S3 (the endpoint stored with the warehouse).
	b, err := os.ReadFile(filepath.Join(testdataDir(t, "sample", "transactions_more"), "part-0003.csv"))
	if err != nil {
		t.Fatal(err)
	}
	key := "incoming/part-0003.csv"
	if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &srv.Bucket, Key: &key, Body: bytes.NewReader(b)}); err != nil {
		t.Fatal(err)
	}
	delete(le.env, envS3Endpoint)
	le.mustLH("table", "import", "sales.transactions", "--from", "s3://"+srv.Bucket+"/incoming/")
	if got := le.count("SELECT count(*) AS n FROM sales.transactions"); got == rows {
		t.Fatalf("the import from S3 added no rows: %q", got)
	}
	le.mustLH("table", "revert", "sales.transactions", "--from", "main")
	if got := le.count("SELECT count(*) AS n FROM sales.transactions"); got != rows {
		t.Fatalf("after revert: %q, want %q", got, rows)
	}
	if ents, _ := os.ReadDir(filepath.Join(le.dataDir, "warehouse")); len(ents) != 0 {
		t.Fatalf("the run or merge wrote %d entries into the local warehouse", len(ents))
	}
	if ents, _ := os.ReadDir(filepath.Join(le.dataDir, "cache", "scan")); len(ents) == 0 {
		t.Fatal("queries read no data file through the scan cache")
	}
	// Explain says what the scan would fetch: with the cache cleared, a
	// query misses; once it ran, it hits.
	le.mustLH("cache", "clear")
	q := "SELECT sum(usd) AS s, count(DISTINCT country) AS c FROM sales.transactions"
	if out := le.mustLH("query", q, "--explain"); !strings.Contains(out, "  cache:    miss, would fetch ") {
		t.Errorf("explain of a new column set:\n%s", out)
	}
	le.mustLH("query", q)
	if out := le.mustLH("query", q, "--explain"); !strings.Contains(out, "  cache:    hit, ") {
		t.Errorf("explain of a cached column set:\n%s", out)
	}
	if out := le.mustLH("cache", "ls"); !strings.Contains(out, "/data/") {
		t.Errorf("cache ls lists no data file:\n%s", out)
	}
	// gc lists the bucket and keeps every file a ref reaches.
	if out, errOut, code := le.lh("gc", "--grace", "1m"); code != 0 {
		t.Fatalf("gc: exit %d\n%s%s", code, out, errOut)
	}
	if got := le.count("SELECT count(*) AS n FROM sales.transactions"); got != rows {
		t.Fatalf("after gc: %q, want %q", got, rows)
	}
	if out, errOut, code := le.lh("doctor"); code != 0 {
		t.Fatalf("doctor: exit %d\n%s%s", code, out, errOut)
	}

	// Data files deleted behind the catalog's back: doctor reports them,
	// a query names one.
	prefix := "e2e/sales/"
	objs, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &srv.Bucket, Prefix: &prefix})
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, o := range objs.Contents {
		if k := *o.Key; strings.Contains(k, "/transactions-") && strings.Contains(k, "/data/") {
			if _, err := srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &srv.Bucket, Key: &k}); err != nil {
				t.Fatal(err)
			}
			gone = append(gone, "s3://"+srv.Bucket+"/"+k)
		}
	}
	if len(gone) == 0 {
		t.Fatal("no data file of sales.transactions in the bucket")
	}
	if out, _, code := le.lh("doctor"); code != 1 || !strings.Contains(out, "data file "+gone[0]+" is missing") {
		t.Errorf("doctor after deleted objects: exit %d\n%s", code, out)
	}
	_, errOut, code := le.lh("query", "SELECT count(*) FROM sales.transactions")
	named := false
	for _, g := range gone {
		named = named || strings.Contains(errOut, g)
	}
	if code == 0 || !named {
		t.Errorf("query of deleted objects: exit %d: %s", code, errOut)
	}

	// A --warehouse naming another warehouse is refused.
	_, errOut, code = le.lh("--warehouse", "file:///tmp/elsewhere", "branch", "ls")
	if code != errdefs.ExitConflict || !strings.Contains(errOut, "keeps its tables in s3://"+srv.Bucket+"/e2e") {
		t.Fatalf("conflicting --warehouse: exit %d: %s", code, errOut)
	}
}

// TestS3WarehouseUnavailable: with MinIO stopped, an import and a query
// fail as unavailable (exit 6) and change nothing; restarted, the same
// commands succeed.
func TestS3WarehouseUnavailable(t *testing.T) {
	srv := miniotest.Start(t)
	le := s3Env(t, srv, "faults")
	before := le.mustLH("branch", "get", "tester.dev", "-O", "json")
	more := testdataDir(t, "sample", "transactions_more")
	srv.Stop()
	for _, args := range [][]string{
		{"table", "import", "sales.transactions", "--from", more},
		{"query", "SELECT count(*) FROM sales.transactions"},
	} {
		_, errOut, code := le.lh(args...)
		if code != errdefs.ExitUnavailable || !strings.Contains(errOut, srv.Endpoint[len("http://"):]) {
			t.Errorf("lakehouse %s with MinIO stopped: exit %d: %s", args[0], code, errOut)
		}
	}
	if after := le.mustLH("branch", "get", "tester.dev", "-O", "json"); after != before {
		t.Fatal("a failed import moved the branch")
	}
	srv.Restart()
	le.mustLH("table", "import", "sales.transactions", "--from", more)
	var got []map[string]any
	if err := json.Unmarshal([]byte(le.mustLH("query", "SELECT count(*) AS n FROM sales.transactions", "-O", "json")), &got); err != nil || len(got) != 1 {
		t.Fatalf("query after restart: %v %v", got, err)
	}
}

// TestS3WarehouseStoppedMidRun: MinIO stops while a model runs; the run
// fails when it writes its output, saying the warehouse is unreachable,
// and the branch is untouched; restarted, the same run succeeds.
func TestS3WarehouseStoppedMidRun(t *testing.T) {
	srv := miniotest.Start(t)
	le := s3Env(t, srv, "midrun")
	before := le.mustLH("branch", "get", "tester.dev", "-O", "json")
	project := writeRunProject(t, sleeperProject(4))
	cmd, stderr, lw := le.start("run", "-p", project, "--preview", "off")
	lw.waitFor(t, "tick", 5*time.Minute, stderr)
	srv.Stop()
	// The lines end when start's own Wait has returned.
	for range lw.lines {
	}
	code := cmd.ProcessState.ExitCode()
	if code == 0 {
		t.Fatalf("the run succeeded with MinIO stopped:\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), srv.Endpoint[len("http://"):]) {
		t.Errorf("exit %d; the error does not name the S3 endpoint:\n%s", code, stderr)
	}
	srv.Restart()
	if after := le.mustLH("branch", "get", "tester.dev", "-O", "json"); after != before {
		t.Fatalf("the failed run moved the branch:\n%s\n%s", before, after)
	}
	le.mustLH("run", "-p", project, "--preview", "off")
	if got := le.count("SELECT n FROM sales.after"); got != "n\n400" {
		t.Errorf("after the run: %q", got)
	}
}
