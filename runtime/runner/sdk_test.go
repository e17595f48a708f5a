package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
	"github.com/lakehouse-dev/lakehouse/runtime/containerd"
	"github.com/lakehouse-dev/lakehouse/runtime/containerd/ctrdtest"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/launchertest"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

// An expectation function uses the real SDK, which every environment
// holds (envcache installs the copy embedded in the binary), on both
// launchers.
const expectationModule = `import lakehouse
import pyarrow as pa
from lakehouse.expectations import expect_column_no_nulls


@lakehouse.expectation()
@lakehouse.python("3.11")
def no_nulls():
    assert hasattr(lakehouse, "__version__"), "the runner's stand-in, not the SDK"
    return expect_column_no_nulls(pa.table({"a": [1, 2]}), "a")


@lakehouse.expectation()
def has_nulls():
    return expect_column_no_nulls(pa.table({"a": [1, None]}), "a")
`

func TestSDKInFunctions(t *testing.T) {
	env := envtest.Env(t, "3.11")
	if env.Packages[0].Name != envcache.SDKName {
		t.Fatalf("the environment does not start with the SDK: %v", env.Paths())
	}
	mod := filepath.Join(t.TempDir(), "checks.py")
	if err := os.WriteFile(mod, []byte(expectationModule), 0o644); err != nil {
		t.Fatal(err)
	}
	launchers := map[string]func(t *testing.T) function.Launcher{
		"process": func(t *testing.T) function.Launcher { return process.New(process.Config{ScratchDir: t.TempDir()}) },
		"containerd": func(t *testing.T) function.Launcher {
			socket, stop, err := ctrdtest.Start()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(stop)
			state, err := os.MkdirTemp("/dev/shm", "lakehouse-ctrd-state-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(state) })
			l, err := containerd.New(context.Background(), containerd.Config{Socket: socket, StateDir: state, Namespace: "lakehouse-test"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		},
	}
	for name, newLauncher := range launchers {
		t.Run(name, func(t *testing.T) {
			l := newLauncher(t)
			for fn, want := range map[string]bool{"no_nulls": true, "has_nulls": false} {
				res, err := l.Launch(context.Background(), function.Invocation{Model: fn, Env: env, ModulePath: mod,
					Function: fn, DataDir: launchertest.DataDir(t), Timeout: time.Minute, Log: func(function.LogLine) {}})
				if err != nil {
					t.Fatalf("%s: %v", fn, err)
				}
				if res.Expectation == nil || *res.Expectation != want {
					t.Fatalf("%s: expectation %v, want %v", fn, res.Expectation, want)
				}
			}
		})
	}
}
