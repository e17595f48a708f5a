package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// TestGC runs `lakehouse gc` on a data dir with a file a killed import
// left, a failed run's branch past its retention and a live table: bad
// flags change nothing; a dry run lists what goes and deletes nothing; gc
// deletes the run branch, then the files only it and the killed import
// held, and the table still reads.
func TestGC(t *testing.T) {
	dataDir, src := t.TempDir(), t.TempDir()
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	lh := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
		code := run(context.Background(), append([]string{"lakehouse"}, args...), e)
		return stdout.String(), stderr.String(), code
	}
	must := func(args ...string) string {
		t.Helper()
		out, stderr, code := lh(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		return out
	}
	csv := filepath.Join(src, "a.csv")
	if err := os.WriteFile(csv, []byte("id,v\n1,a\n2,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must("checkout", "-b", "tester.dev")
	must("namespace", "create", "sales")
	must("table", "import", "sales.t", "--from", csv)
	// A failed run wrote a table on its branch, a week and a day ago.
	must("branch", "create", "tester.run-0c0ffee0deadbeef")
	must("table", "import", "sales.out", "--from", csv, "--branch", "tester.run-0c0ffee0deadbeef")
	runs, err := runrec.Open(filepath.Join(dataDir, "runs"))
	if err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-8 * 24 * time.Hour)
	rec := &runrec.Record{ID: "0c0ffee0deadbeef", Project: "p", User: "tester", Target: "tester.dev", Status: runrec.StatusFailed,
		RunBranch: "tester.run-0c0ffee0deadbeef", BranchKept: true, Started: long, Ended: long}
	if err := runs.Create(rec); err != nil {
		t.Fatal(err)
	}
	// What a killed import left; and every file is three days old.
	wh := filepath.Join(dataDir, "warehouse")
	orphan := filepath.Join(wh, "sales", "t-killed", "data", "x.parquet")
	if err := os.MkdirAll(filepath.Dir(orphan), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-72 * time.Hour)
	var files []string
	filepath.WalkDir(wh, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
			os.Chtimes(p, old, old)
		}
		return nil
	})
	unchanged := func(what string) {
		t.Helper()
		for _, p := range files {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		must("branch", "get", "tester.run-0c0ffee0deadbeef")
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--grace", "soon"}, `invalid --grace "soon"`},
		{[]string{"--grace", "10s"}, "--grace 10s is too short"},
		{[]string{"--grace", "-1h"}, `invalid --grace "-1h"`},
		{[]string{"--failed-runs-retention", "a week"}, `invalid --failed-runs-retention "a week"`},
		{[]string{"--expire-commits", "0"}, `invalid --expire-commits "0"`},
		{[]string{"--expire-commits", "forever"}, `invalid --expire-commits "forever"`},
		{[]string{"now"}, `unexpected argument "now"`},
		{[]string{"--force"}, "unknown flag --force"},
	} {
		_, stderr, code := lh(append([]string{"gc"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("gc %v: exit %d, %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
		unchanged("gc " + strings.Join(tc.args, " "))
	}

	var dry struct {
		DryRun  bool `json:"dry_run"`
		Deleted []struct {
			Key  string `json:"key"`
			Size int64  `json:"size"`
		} `json:"deleted"`
		Expired []struct{ Run, Branch string } `json:"expired_run_branches"`
	}
	if err := json.Unmarshal([]byte(must("gc", "--dry-run", "-O", "json")), &dry); err != nil {
		t.Fatal(err)
	}
	unchanged("gc --dry-run")
	if !dry.DryRun || len(dry.Expired) != 1 || dry.Expired[0].Branch != "tester.run-0c0ffee0deadbeef" {
		t.Fatalf("dry run: %+v", dry)
	}
	var keys []string
	for _, d := range dry.Deleted {
		keys = append(keys, d.Key)
	}
	// The orphan, and the metadata, manifest list, manifest and data file
	// of sales.out, which only the run branch held.
	if len(keys) != 5 || !strings.HasPrefix(keys[0], "sales/out-") || !strings.Contains(strings.Join(keys, " "), "sales/t-killed/data/x.parquet") {
		t.Fatalf("dry run would delete %v", keys)
	}

	out := must("gc")
	if !strings.Contains(out, "deleted run branch tester.run-0c0ffee0deadbeef (failed run 0c0ffee0deadbeef)") ||
		!strings.Contains(out, "deleted        7 B  sales/t-killed/data/x.parquet") ||
		!strings.Contains(out, "deleted 5 files") {
		t.Fatalf("gc printed:\n%s", out)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatalf("the orphan is still there: %v", err)
	}
	if _, stderr, code := lh("branch", "get", "tester.run-0c0ffee0deadbeef"); code != 3 {
		t.Fatalf("the run branch is still there: %s", stderr)
	}
	if r, err := runs.Get(rec.ID); err != nil || r.BranchKept {
		t.Fatalf("the run record still keeps its branch: %+v, %v", r, err)
	}
	if got := must("table", "get", "sales.t", "-O", "json"); !strings.Contains(got, `"row_count": 2`) {
		t.Fatalf("sales.t after gc: %s", got)
	}
	if out := must("gc"); !strings.HasPrefix(out, "deleted 0 files") {
		t.Fatalf("a second gc printed:\n%s", out)
	}
}
