package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
)

// TestEnvVerify: `env verify` passes on a fresh install, reports a file
// appended to with exit 1 and a hint, and --fix removes the package.
func TestEnvVerify(t *testing.T) {
	dataDir, cacheDir := t.TempDir(), t.TempDir()
	c := envtest.Open(t, envcache.Config{Dir: cacheDir, DownloadDir: envtest.DownloadDir(), RunnerRequirements: []string{}})
	env, err := c.Environment(context.Background(), envcache.Spec{Python: "3.11", Requirements: []string{"six"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir, envEnvCacheDir: cacheDir}
	lh := func(args ...string) (string, string, int) {
		var o, e bytes.Buffer
		env := &Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Getenv: func(k string) string { return vars[k] }}
		code := run(context.Background(), append([]string{"lakehouse"}, args...), env)
		return o.String(), e.String(), code
	}
	out, errOut, code := lh("env", "verify")
	if code != 0 || !strings.Contains(out, "checked 1 package,") || !strings.Contains(out, ": 0 differ") {
		t.Fatalf("fresh install: exit %d\n%s%s", code, out, errOut)
	}
	f := filepath.Join(env.Packages[0].Dir, "six.py")
	os.Chmod(f, 0o644)
	fh, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("import os\n")
	fh.Close()
	os.Chmod(f, 0o444)
	out, errOut, code = lh("env", "verify")
	if code != 1 || !strings.Contains(out, "modified  six.py") || !strings.Contains(errOut, "lakehouse env verify --fix") {
		t.Fatalf("appended file: exit %d, want 1\n%s%s", code, out, errOut)
	}
	out, errOut, code = lh("env", "verify", "--fix")
	if code != 0 || !strings.Contains(out, "damaged, removed") {
		t.Fatalf("--fix: exit %d\n%s%s", code, out, errOut)
	}
	var v envVerifyView
	out, errOut, code = lh("env", "verify", "-O", "json")
	mustJSON(t, out, &v)
	if code != 0 || v.Packages != 0 || len(v.Differ) != 0 {
		t.Fatalf("after --fix: exit %d %+v\n%s", code, v, errOut)
	}
}
