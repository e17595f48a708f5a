package runrec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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

// TestCodeContentAddressed: runs of the same code share one read-only
// copy, VerifyCode refuses a copy that was changed (a file edited, added
// or removed), and the copy goes with the last run that links to it.
func TestCodeContentAddressed(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "lakehouse.yml"), []byte("project:\n  name: p\n"), 0o644)
	os.MkdirAll(filepath.Join(project, "models"), 0o755)
	os.WriteFile(filepath.Join(project, "models", "m.py"), []byte("def m(): pass\n"), 0o644)
	newRun := func() *Record {
		r := &Record{ID: NewID(time.Now()), Status: StatusSucceeded}
		if err := s.Create(r); err != nil {
			t.Fatal(err)
		}
		if r.Files, r.CodeHash, err = s.SnapshotCode(r.ID, project); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := newRun(), newRun()
	if s.CodeDir(a.ID) != s.CodeDir(b.ID) || filepath.Base(s.CodeDir(a.ID)) != a.CodeHash {
		t.Fatalf("code folders %s and %s, want one named %s", s.CodeDir(a.ID), s.CodeDir(b.ID), a.CodeHash)
	}
	dir := s.CodeDir(a.ID)
	for _, p := range []string{dir, filepath.Join(dir, "models"), filepath.Join(dir, "models", "m.py")} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s is writable: %v %v", p, st.Mode(), err)
		}
	}
	if err := s.VerifyCode(a); err != nil {
		t.Fatal(err)
	}
	tampers := []struct {
		name   string
		tamper func()
		undo   func()
		want   string
	}{
		{"edit", func() {
			f := filepath.Join(dir, "models", "m.py")
			os.Chmod(f, 0o644)
			os.WriteFile(f, []byte("def m(): import os; os.system('id')\n"), 0o644)
		}, func() {
			os.WriteFile(filepath.Join(dir, "models", "m.py"), []byte("def m(): pass\n"), 0o444)
			os.Chmod(filepath.Join(dir, "models", "m.py"), 0o444)
		}, "sha256"},
		{"add", func() {
			os.Chmod(filepath.Join(dir, "models"), 0o755)
			os.WriteFile(filepath.Join(dir, "models", "evil.py"), []byte("x = 1\n"), 0o444)
		}, func() { os.Remove(filepath.Join(dir, "models", "evil.py")) }, "files added: models/evil.py"},
		{"remove", func() {
			os.Chmod(dir, 0o755)
			os.Remove(filepath.Join(dir, "lakehouse.yml"))
		}, func() { os.WriteFile(filepath.Join(dir, "lakehouse.yml"), []byte("project:\n  name: p\n"), 0o444) }, "files removed: lakehouse.yml"},
	}
	for _, tc := range tampers {
		tc.tamper()
		err := s.VerifyCode(a)
		var ce *CodeChangedError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: VerifyCode = %v, want a CodeChangedError with %q", tc.name, err, tc.want)
		}
		tc.undo()
		if err := s.VerifyCode(a); err != nil {
			t.Fatalf("%s undone: %v", tc.name, err)
		}
	}
	// A new run of the same code replaces a damaged copy.
	os.Chmod(filepath.Join(dir, "models", "m.py"), 0o644)
	os.WriteFile(filepath.Join(dir, "models", "m.py"), []byte("evil\n"), 0o644)
	c := newRun()
	if err := s.VerifyCode(c); err != nil {
		t.Fatalf("a new run over a damaged copy: %v", err)
	}
	if err := s.Delete(a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("code deleted while run %s links to it: %v", c.ID, err)
	}
	if err := s.Delete(c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("code of deleted runs kept: %v", err)
	}
}

// deadProcess returns the pid and start ticks of a process that has
// ended.
func deadProcess(t *testing.T) (int, int64) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	start := proc.StartTicks(pid)
	cmd.Process.Kill()
	cmd.Wait()
	return pid, start
}

// TestInterruptedLeftovers: what a killed process leaves while creating
// or saving a record (a hidden run folder, an empty .record.json.tmp, a
// folder without a record) is cleaned by the next List, and a complete
// temporary record is recovered: no run stays unlisted.
func TestInterruptedLeftovers(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pid, start := deadProcess(t)
	old := time.Now().Add(-time.Hour)
	// Create interrupted: a hidden folder of a dead process.
	newDir := filepath.Join(s.Dir, fmt.Sprintf("%s%d-%s-123", newPrefix, pid, NewID(time.Now())))
	os.Mkdir(newDir, 0o755)
	os.WriteFile(filepath.Join(newDir, "record.json"), nil, 0o644)
	// Save interrupted: an empty temporary file beside the record.
	killed := &Record{ID: NewID(time.Now()), Status: StatusRunning, Started: time.Now().Add(-10 * time.Second)}
	if err := s.Create(killed); err != nil {
		t.Fatal(err)
	}
	killed.PID, killed.PIDStart = pid, start
	s.Save(killed)
	os.WriteFile(filepath.Join(s.dir(killed.ID), recordTmp), nil, 0o644)
	// An older lakehouse killed between creating the folder and renaming
	// its first record: one with nothing, one with a complete record.
	empty := NewID(old) + "0"
	os.Mkdir(s.dir(empty), 0o755)
	os.WriteFile(filepath.Join(s.dir(empty), recordTmp), nil, 0o644)
	os.Chtimes(s.dir(empty), old, old)
	whole := &Record{ID: NewID(old) + "1", Status: StatusFailed, Started: old}
	os.Mkdir(s.dir(whole.ID), 0o755)
	b, _ := json.Marshal(whole)
	os.WriteFile(filepath.Join(s.dir(whole.ID), recordTmp), b, 0o644)
	// SnapshotCode interrupted: the killed run's code half copied (read
	// only, as SnapshotCode leaves it); a live run's copy stays.
	live := &Record{ID: NewID(time.Now()) + "2", Status: StatusRunning, Started: time.Now()}
	if err := s.Create(live); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(s.codeRoot(), codeTmpPrefix+killed.ID+"-123")
	os.MkdirAll(half, 0o755)
	os.WriteFile(filepath.Join(half, "m.sql"), []byte("SELECT 1"), 0o444)
	os.Chmod(half, 0o555)
	copying := filepath.Join(s.codeRoot(), codeTmpPrefix+live.ID+"-456")
	os.MkdirAll(copying, 0o755)

	recs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != live.ID+","+killed.ID+","+whole.ID {
		t.Errorf("listed %v, want %s, %s and the recovered %s", ids, live.ID, killed.ID, whole.ID)
	}
	if _, err := os.Stat(copying); err != nil {
		t.Errorf("List removed the code folder of a running run: %v", err)
	}
	var left []string
	filepath.WalkDir(s.Dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != copying && (strings.HasSuffix(p, ".tmp") || strings.HasPrefix(d.Name(), newPrefix) ||
			strings.HasPrefix(d.Name(), codeTmpPrefix) || d.Name() == empty) {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("left after List: %v", left)
	}
}

// TestKilledRunDuration: a running record whose process is gone is listed
// as killed, with the duration up to its last heartbeat.
func TestKilledRunDuration(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Minute).UTC()
	r := &Record{ID: NewID(started), Status: StatusRunning, Started: started}
	if err := s.Create(r); err != nil {
		t.Fatal(err)
	}
	r.PID, r.PIDStart = deadProcess(t)
	s.Save(r)
	s.OpenLogs(r.ID)
	last := started.Add(7 * time.Second)
	for _, p := range []string{s.dir(r.ID), filepath.Join(s.dir(r.ID), "record.json"), filepath.Join(s.dir(r.ID), "logs.jsonl")} {
		os.Chtimes(p, started.Add(time.Second), started.Add(time.Second))
	}
	os.Chtimes(s.dir(r.ID), last, last) // the last heartbeat
	recs, err := s.List()
	if err != nil || len(recs) != 1 {
		t.Fatalf("list: %v %v", recs, err)
	}
	got := recs[0]
	if got.Status != StatusKilled || got.Duration < 6.9 || got.Duration > 7.1 || !got.Ended.Equal(last) {
		t.Errorf("killed run: status %s, duration %.2f s, ended %v; want killed, 7 s, %v", got.Status, got.Duration, got.Ended, last)
	}
	if !strings.Contains(got.Error, "interrupted") {
		t.Errorf("killed run error %q", got.Error)
	}
	// Heartbeat moves it.
	if err := s.Heartbeat(r.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(r.ID); got.Duration < 59 {
		t.Errorf("after a heartbeat now: duration %.1f s", got.Duration)
	}
}

// TestCodeTmpOfARunCreatedAfterTheListing: List reads the records, then
// cleans the code folders being filled; a run created in between (another
// run of the same server starting) keeps its folder, as does a dry run
// whose process lives, while a dry run whose process is gone loses it.
func TestCodeTmpOfARunCreatedAfterTheListing(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	running := &Record{ID: NewID(now) + "1", Status: StatusRunning, Started: now}
	dry := &Record{ID: NewID(now) + "2", Status: StatusPlanned, Started: now}
	deadDry := &Record{ID: NewID(now) + "3", Status: StatusPlanned, Started: now}
	for _, r := range []*Record{running, dry, deadDry} {
		if err := s.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	deadDry.PID, deadDry.PIDStart = deadProcess(t)
	if err := s.Save(deadDry); err != nil {
		t.Fatal(err)
	}
	folder := func(r *Record) string {
		p := filepath.Join(s.codeRoot(), codeTmpPrefix+r.ID+"-1")
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keep := []string{folder(running), folder(dry)}
	gone := folder(deadDry)
	s.cleanCodeTmp(map[string]*Record{}) // listed before any of them
	for _, p := range keep {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the code folder of a live run was removed: %v", err)
		}
	}
	if _, err := os.Stat(gone); err == nil {
		t.Errorf("the code folder of a dry run whose process is gone was kept")
	}
}
