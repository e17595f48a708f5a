package envcache_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
)

// Every environment with runner requirements holds the SDK embedded in the
// binary, installed once as a read-only package folder and first on
// sys.path, so functions import lakehouse.expectations.
func TestEnvironmentHasSDK(t *testing.T) {
	env := envtest.Env(t, "3.11")
	if len(env.Packages) == 0 || env.Packages[0].Name != envcache.SDKName {
		t.Fatalf("first package is not the SDK: %v", env.Paths())
	}
	sdk := env.Packages[0]
	if st, err := os.Stat(filepath.Join(sdk.Dir, "lakehouse")); err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("SDK folder %s is not a read-only package folder (%v)", sdk.Dir, err)
	}
	cmd := exec.Command(env.Python.Path, "-s", "-S", "-c", `import lakehouse, importlib.metadata as md, pyarrow as pa
from lakehouse.expectations import expect_column_no_nulls
t = pa.table({"a": [1, 2], "b": [1, None]})
print(lakehouse.__file__, md.version("lakehouse"), expect_column_no_nulls(t, "a"), expect_column_no_nulls(t, "b"))`)
	cmd.Env = []string{"PYTHONPATH=" + strings.Join(env.Paths(), ":")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("import lakehouse.expectations: %v\n%s", err, out)
	}
	want := filepath.Join(sdk.Dir, "lakehouse", "__init__.py") + " " + sdk.Version + " True False"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// The SDK is one folder per interpreter however many caches ask at once,
// and GC keeps it while a resolution remains.
func TestSDKInstalledOnceAndKept(t *testing.T) {
	ctx := context.Background()
	dir, dl := t.TempDir(), envtest.DownloadDir()
	spec := envcache.Spec{Python: "3.11", Requirements: []string{"six"}}
	a := envtest.Open(t, envcache.Config{Dir: dir, DownloadDir: dl, RunnerRequirements: []string{"attrs"}})
	envA, err := a.Environment(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	b := envtest.Open(t, envcache.Config{Dir: dir, DownloadDir: dl, RunnerRequirements: []string{"attrs"}})
	envB, err := b.Environment(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if envA.Packages[0].Name != envcache.SDKName || envA.Packages[0].Dir != envB.Packages[0].Dir || b.Installs() != 0 {
		t.Fatalf("SDK %s vs %s, second cache installed %d", envA.Packages[0].Dir, envB.Packages[0].Dir, b.Installs())
	}
	removed, err := a.GC(ctx, envcache.GCOptions{})
	if err != nil || len(removed) != 0 {
		t.Fatalf("gc removed %d packages (%v)", len(removed), err)
	}
	if _, err := os.Stat(envA.Packages[0].Dir); err != nil {
		t.Fatal(err)
	}
}
