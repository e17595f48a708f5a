package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/planner"
)

// TestRunInvalidProjects plans each project of testdata/pipelines/invalid
// (one folder per class of error) through the command line and checks the
// exact error text (expected.txt, with every problem at file:line), exit
// code 2, and that no branch, table or warehouse file changed. A folder's
// optional `args` file holds extra arguments, one per line. Regenerate the
// expected texts with `go test ./cli -run TestRunInvalidProjects -update`.
func TestRunInvalidProjects(t *testing.T) {
	testdata, err := filepath.Abs(filepath.Join("..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	lh := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
		code := run(context.Background(), append([]string{"lakehouse"}, args...), e)
		return stdout.String(), stderr.String(), code
	}
	for _, args := range [][]string{
		{"checkout", "-b", "tester.dev"},
		{"namespace", "create", "sales"},
		{"table", "import", "sales.transactions", "--from", filepath.Join(testdata, "sample", "transactions")},
	} {
		if _, stderr, code := lh(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	state := func() string {
		t.Helper()
		var b strings.Builder
		for _, args := range [][]string{{"branch", "ls", "-O", "json"}, {"table", "ls", "-O", "json"}, {"log", "-O", "json"}} {
			out, stderr, code := lh(args...)
			if code != 0 {
				t.Fatalf("%v: %s", args, stderr)
			}
			b.WriteString(out)
		}
		filepath.WalkDir(filepath.Join(dataDir, "warehouse"), func(p string, d os.DirEntry, err error) error {
			b.WriteString(p + "\n")
			return nil
		})
		return b.String()
	}
	before := state()

	dirs, err := filepath.Glob(filepath.Join(testdata, "pipelines", "invalid", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no invalid projects: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			args := []string{"run", "--dry-run", "-p", dir}
			if b, err := os.ReadFile(filepath.Join(dir, "args")); err == nil {
				args = append(args, strings.Fields(string(b))...)
			}
			stdout, stderr, code := lh(args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout is not empty:\n%s", stdout)
			}
			got := strings.ReplaceAll(stderr, testdata, "$TESTDATA")
			got = machinePythonsRE.ReplaceAllString(got, "(this machine has …)")
			path := filepath.Join(dir, "expected.txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("stderr differs from %s (rerun with -update to accept):\n--- want\n%s--- got\n%s", path, want, got)
			}
		})
	}
	if after := state(); after != before {
		t.Errorf("planning invalid projects changed the catalog:\n--- before\n%s\n--- after\n%s", before, after)
	}
}

// machinePythonsRE matches the list of interpreters found on this machine,
// which differs between machines.
var machinePythonsRE = regexp.MustCompile(`\(this machine has [^)]*\)`)

// TestRunDryRunJSON checks the JSON plan against the catalog it was made
// at: the head commit, the table's snapshot, the models in order.
func TestRunDryRunJSON(t *testing.T) {
	testdata, err := filepath.Abs(filepath.Join("..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	lh := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
		if code := run(context.Background(), append([]string{"lakehouse"}, args...), e); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		return stdout.String()
	}
	lh("checkout", "-b", "tester.dev")
	lh("namespace", "create", "sales")
	lh("table", "import", "sales.transactions", "--from", filepath.Join(testdata, "sample", "transactions"))
	var branch struct {
		Head string `json:"head"`
	}
	var table struct {
		Snapshot struct {
			ID int64 `json:"id"`
		} `json:"snapshot"`
	}
	mustJSON(t, lh("branch", "get", "tester.dev", "-O", "json"), &branch)
	mustJSON(t, lh("table", "get", "sales.transactions", "-O", "json"), &table)

	out := lh("run", "--dry-run", "-p", filepath.Join(testdata, "pipelines", "sample"), "--param", "min_usd=2.5", "-O", "json")
	var plan planner.Plan
	mustJSON(t, out, &plan)
	if plan.Project != "euro_report" || plan.Ref != "tester.dev" || plan.Commit != branch.Head || plan.Namespace != "sales" {
		t.Errorf("plan header = %s at %s (%s) in %s; head is %s", plan.Project, plan.Ref, plan.Commit, plan.Namespace, branch.Head)
	}
	if len(plan.Tables) != 1 || plan.Tables[0].SnapshotID != table.Snapshot.ID || plan.Tables[0].SnapshotID == 0 {
		t.Errorf("tables = %+v, snapshot %d", plan.Tables, table.Snapshot.ID)
	}
	var names []string
	for _, n := range plan.Models {
		names = append(names, n.Name)
	}
	if got := strings.Join(names, " "); got != "euro_selection usd_by_country country_share usd_not_null" {
		t.Errorf("models = %s", got)
	}
	if p := plan.Models[0].Parameters; len(p) != 1 || p[0].Value != 2.5 {
		t.Errorf("parameters of euro_selection = %+v", p)
	}
	if py := plan.Models[1].Python; py == nil || py.Version != "3.10" || strings.Join(py.Requirements, " ") != "numpy<2 pandas==1.5.3 pyarrow" {
		t.Errorf("python of usd_by_country = %+v", py)
	}
	if o := plan.Models[1].Output; o.Materialization != "REPLACE" || o.Table != "sales.usd_by_country" {
		t.Errorf("output of usd_by_country = %+v", o)
	}
	if len(plan.Interpreters) == 0 {
		t.Error("no interpreters listed")
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v in:\n%s", err, s)
	}
}
