package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"
)

// TestCreateBesideHonoursUmask: --out files get 0666 less the umask, as
// os.Create gives, not os.CreateTemp's 0600.
func TestCreateBesideHonoursUmask(t *testing.T) {
	for _, umask := range []int{0o022, 0o002, 0o077} {
		old := syscall.Umask(umask)
		f, err := createBeside(filepath.Join(t.TempDir(), "out.csv"))
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		st, err := os.Stat(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.Mode().Perm(), os.FileMode(0o666&^umask); got != want {
			t.Errorf("umask %04o: mode %04o, want %04o", umask, got, want)
		}
	}
}

// TestQueryParquetOut: -O parquet, which DuckDB writes itself, honours
// --max-rows and the umask, reports the rows written, writes to stdout
// when it is not a terminal, and a failed query leaves neither a partial
// file nor its private directory, and an existing target unchanged.
func TestQueryParquetOut(t *testing.T) {
	dataDir, outDir := t.TempDir(), t.TempDir()
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	lh := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
		code := run(context.Background(), append([]string{"lakehouse"}, args...), e)
		return stdout.String(), stderr.String(), code
	}
	rows := func(b []byte) int64 {
		t.Helper()
		r, err := file.NewParquetReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		return r.NumRows()
	}
	entries := func() []string { return dirNames(t, outDir) }
	const sql = "SELECT i, i * 2 AS j FROM range(100000) r(i) ORDER BY i"
	out := filepath.Join(outDir, "x.parquet")

	old := syscall.Umask(0o027)
	_, stderr, code := lh("query", sql, "-O", "parquet", "--out", out, "--max-rows", "1000")
	syscall.Umask(old)
	if code != 0 || !strings.HasPrefix(stderr, "wrote 1000 rows to "+out) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := rows(b); n != 1000 {
		t.Errorf("%s has %d rows, want 1000", out, n)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %04o, want 0640 (umask 027)", st.Mode().Perm())
	}

	// A query that fails while it writes: the old file stays as it was.
	_, stderr, code = lh("query", "SELECT CAST(CASE WHEN i = 90000 THEN 'x' ELSE '1' END AS INTEGER) AS v FROM range(100000) r(i)",
		"-O", "parquet", "--out", out)
	if code != 1 || !strings.Contains(stderr, "Conversion Error") {
		t.Errorf("failed query: exit %d: %s", code, stderr)
	}
	if b2, _ := os.ReadFile(out); !bytes.Equal(b, b2) {
		t.Errorf("a failed query changed %s", out)
	}
	if got := entries(); len(got) != 1 {
		t.Errorf("%s holds %v after a failed query, want only x.parquet", outDir, got)
	}

	// A relative --out, in the working directory.
	t.Chdir(outDir)
	if _, stderr, code := lh("query", sql, "--out", "rel.parquet"); code != 0 || !strings.HasPrefix(stderr, "wrote 100000 rows to rel.parquet") {
		t.Fatalf("relative --out: exit %d: %s", code, stderr)
	}
	if got := entries(); len(got) != 2 {
		t.Errorf("%s holds %v, want x.parquet and rel.parquet", outDir, got)
	}

	// Stdout that is not a terminal gets the file.
	stdout, stderr, code := lh("query", sql, "-O", "parquet")
	if code != 0 || stderr != "" {
		t.Fatalf("stdout: exit %d: %s", code, stderr)
	}
	if n := rows([]byte(stdout)); n != 100000 {
		t.Errorf("stdout has %d rows, want 100000", n)
	}
}
