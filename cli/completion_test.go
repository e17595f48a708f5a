package cli

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestCompletion(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	lh := func(args ...string) (string, int) {
		var stdout, stderr bytes.Buffer
		e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
		code := run(context.Background(), append([]string{"lakehouse"}, args...), e)
		if stderr.Len() > 0 && args[0] == completeCommand {
			t.Errorf("%v wrote to stderr: %s", args, stderr.String())
		}
		return stdout.String(), code
	}
	for _, args := range [][]string{
		{"checkout", "-b", "tester.dev"},
		{"tag", "create", "v1", "--from-ref", "main"},
		{"namespace", "create", "sales"},
		{"table", "import", "sales.t", "--from", "../testdata/sample/transactions/part-0001.csv"},
	} {
		if out, code := lh(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, out)
		}
	}
	for _, tt := range []struct {
		words []string
		want  []string
	}{
		{[]string{"br"}, []string{"branch"}},
		{[]string{"branch", ""}, []string{"ls", "create", "rm", "rename", "get"}},
		{[]string{"branch", "rm", ""}, []string{"main", "tester.dev"}},
		{[]string{"checkout", "te"}, []string{"tester.dev"}},
		{[]string{"query", "-r", ""}, []string{"main", "tester.dev", "v1"}},
		{[]string{"merge", "tester.dev", "--into", ""}, []string{"main", "tester.dev"}},
		{[]string{"table", "get", ""}, []string{"sales.t"}},
		{[]string{"table", "revert", "sales.t", "--from", "v"}, []string{"v1"}},
		{[]string{"table", "ls", "-n", ""}, []string{"default", "sales"}},
		{[]string{"query", "-O", "arr"}, []string{"arrow", "arrows"}},
		{[]string{"completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"serve", "--role", ""}, []string{"all", "control", "worker"}},
		{[]string{"auth", "key", "create", "--role", "w"}, []string{"worker", "writer"}},
		{[]string{"workers", ""}, []string{"ls"}},
		{[]string{"config", "get", "a"}, []string{"active_branch", "addr", "api_key"}},
		{[]string{"--data-dir", "/nonexistent/x", "branch", "rm", ""}, nil},
		{[]string{"nosuch", ""}, nil},
	} {
		out, code := lh(append([]string{completeCommand}, tt.words...)...)
		if code != 0 {
			t.Errorf("%q: exit %d", tt.words, code)
		}
		got := strings.Fields(out)
		slices.Sort(got)
		want := slices.Clone(tt.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("complete %q = %q, want %q", tt.words, got, want)
		}
	}
	// Flags of the command and the global ones.
	out, _ := lh(completeCommand, "table", "import", "x", "--mo")
	if strings.TrimSpace(out) != "--mode" {
		t.Errorf("complete --mo = %q", out)
	}
}

// TestCompletionScripts checks the scripts parse, and that the bash one
// offers what the binary prints, filtered by the word being completed.
func TestCompletionScripts(t *testing.T) {
	for _, sh := range completionShells {
		var stdout bytes.Buffer
		e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stdout, Getenv: func(string) string { return "" }}
		if code := run(context.Background(), []string{"lakehouse", "completion", sh}, e); code != 0 {
			t.Fatalf("completion %s: exit %d: %s", sh, code, stdout.String())
		}
		if !strings.Contains(stdout.String(), "__complete") {
			t.Errorf("%s script does not call __complete", sh)
		}
		if sh != "bash" {
			continue
		}
		// The binary is a shell function here: it answers with fixed
		// candidates, and compgen filters them by the current word.
		script := stdout.String() + `
lakehouse() { [[ $1 == __complete ]] && printf 'alice.dev\nmain\nmarket\n'; }
COMP_WORDS=(lakehouse checkout ma); COMP_CWORD=2
_lakehouse
printf '%s\n' "${COMPREPLY[@]}"
`
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v: %s", err, out)
		}
		if got := strings.Fields(string(out)); !slices.Equal(got, []string{"main", "market"}) {
			t.Errorf("bash completion of 'ma' = %q", got)
		}
	}
	var stdout bytes.Buffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stdout, Getenv: func(string) string { return "" }}
	if code := run(context.Background(), []string{"lakehouse", "completion", "tcsh"}, e); code != 2 {
		t.Errorf("completion tcsh: exit %d, want 2: %s", code, stdout.String())
	}
}

// TestCompletionRemoteRuns: with a server, run ids come from the server's
// records, not from the client's data dir.
func TestCompletionRemoteRuns(t *testing.T) {
	d := newAuthDir(t)
	writeFailedRun(t, d.dataDir) // run 0c0ffee0deadbeef, on the server's side
	addr := d.serve()
	for _, words := range [][]string{{"runs", "get", ""}, {"runs", "logs", "0c"}, {"rerun", ""}} {
		out, errOut, code := d.remote(addr, "", append([]string{completeCommand}, words...)...)
		if code != 0 || strings.TrimSpace(out) != "0c0ffee0deadbeef" || errOut != "" {
			t.Errorf("complete %q against the server = %q (exit %d, %s), want the server's run", words, out, code, errOut)
		}
		out, _, _ = d.runIn(d.client, nil, append([]string{completeCommand}, words...)...)
		if strings.TrimSpace(out) != "" {
			t.Errorf("complete %q on the client's empty data dir = %q, want nothing", words, out)
		}
	}
}
