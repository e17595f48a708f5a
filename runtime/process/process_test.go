package process_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/launchertest"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

func TestLauncher(t *testing.T) {
	scratch := t.TempDir()
	launchertest.Run(t, process.New(process.Config{ScratchDir: scratch}), launchertest.Capabilities{NetworkIsolation: os.Geteuid() == 0, Isolation: true})
	left, _ := filepath.Glob(filepath.Join(scratch, "*"))
	if len(left) != 0 {
		t.Fatalf("scratch left behind: %v", left)
	}
}

// TestInitBinary: Config.Init is the program that starts an isolated
// function; one that does not exist fails the launch.
func TestInitBinary(t *testing.T) {
	if err := process.Check(process.IsolationAuto); err != nil {
		t.Skip(err)
	}
	l := process.New(process.Config{ScratchDir: t.TempDir(), Init: filepath.Join(t.TempDir(), "no-such-init")})
	_, err := l.Launch(context.Background(), function.Invocation{Model: "hello", Env: launchertest.Env(t),
		ModulePath: launchertest.FunctionsFile(t), Function: "hello", DataDir: launchertest.DataDir(t), Timeout: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "no-such-init") {
		t.Fatalf("launch with a missing init: %v", err)
	}
}
