package runrec

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/proc"
)

// TestLiveAnyBinaryName: a running run is alive whatever its binary is
// called (go run, a renamed build), and a later process that got its pid
// is not it.
func TestLiveAnyBinaryName(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	start := proc.StartTicks(pid)
	if start == 0 {
		t.Fatal("no start time for a live process")
	}
	r := &Record{Status: StatusRunning, PID: pid, PIDStart: start, Boot: proc.BootID()}
	if got := r.Live(); got != StatusRunning {
		t.Errorf("live run of a binary not named lakehouse: %s, want running", got)
	}
	other := *r
	other.PIDStart = start + 1
	if got := other.Live(); got != StatusKilled {
		t.Errorf("a recycled pid: %s, want killed", got)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got := r.Live(); got != StatusKilled {
		t.Errorf("after the process ended: %s, want killed", got)
	}
}

// TestParamsKeepNumbers: parameters come back as written, an int as that
// int (not a float64 that prints as 1e+06 or loses digits past 2^53).
func TestParamsKeepNumbers(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &Record{ID: NewID(time.Now()), Status: StatusSucceeded,
		Params: map[string]any{"n": int64(1000000), "big": int64(9007199254740993), "f": 0.5}}
	if err := s.Create(r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"n": "1000000", "big": "9007199254740993", "f": "0.5"} {
		if n, ok := got.Params[k].(json.Number); !ok || n.String() != want {
			t.Errorf("parameter %s came back as %#v, want %s", k, got.Params[k], want)
		}
	}
}

// TestSnapshotFollowsFileLinks: a project file that is a link to a file
// elsewhere is shipped (it used to be left out, so the run could not
// import the module the plan was built from).
func TestSnapshotFollowsFileLinks(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shared, project := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(shared, "models.py"), []byte("x = 1\n"), 0o644)
	os.WriteFile(filepath.Join(project, "lakehouse.yml"), []byte("project:\n  name: p\n"), 0o644)
	if err := os.Symlink(filepath.Join(shared, "models.py"), filepath.Join(project, "models.py")); err != nil {
		t.Fatal(err)
	}
	os.Symlink(shared, filepath.Join(project, "linked_dir")) // a link to a folder stays out
	r := &Record{ID: NewID(time.Now()), Status: StatusRunning}
	if err := s.Create(r); err != nil {
		t.Fatal(err)
	}
	files, _, err := s.SnapshotCode(r.ID, project)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(files, ",") != "lakehouse.yml,models.py" {
		t.Errorf("snapshot files %v, want lakehouse.yml and models.py", files)
	}
	if b, err := os.ReadFile(filepath.Join(s.CodeDir(r.ID), "models.py")); err != nil || string(b) != "x = 1\n" {
		t.Errorf("shipped models.py: %q %v", b, err)
	}
}
