package runrec

import (
	"encoding/json"
	"os/exec"
	"testing"
	"time"
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
	start := procStart(pid)
	if start == 0 {
		t.Fatal("no start time for a live process")
	}
	r := &Record{Status: StatusRunning, PID: pid, PIDStart: start, Boot: bootID()}
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
