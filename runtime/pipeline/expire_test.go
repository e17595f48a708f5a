package pipeline

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// TestExpiredRunBranches: which kept run branches may go at a cutoff.
func TestExpiredRunBranches(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	now := time.Now()
	old, recent := now.Add(-8*24*time.Hour), now.Add(-time.Hour)
	rec := func(id string, st runrec.Status, kept bool, started, ended time.Time, pid int) *runrec.Record {
		return &runrec.Record{ID: id, Status: st, RunBranch: "u.run-" + id, BranchKept: kept, Started: started, Ended: ended,
			PID: pid, Boot: string(boot[:len(boot)-1])}
	}
	recs := []*runrec.Record{
		rec("failed-old", runrec.StatusFailed, true, old, old, 0),
		rec("failed-recent", runrec.StatusFailed, true, recent, recent, 0),
		rec("failed-gone", runrec.StatusFailed, false, old, old, 0),
		rec("cancelled-old", runrec.StatusCancelled, true, old, old, 0),
		rec("killed-old", runrec.StatusRunning, true, old, time.Time{}, dead.Process.Pid),
		rec("killed-recent", runrec.StatusRunning, true, recent, time.Time{}, dead.Process.Pid),
		rec("running-old", runrec.StatusRunning, true, old, time.Time{}, os.Getpid()),
	}
	var got []string
	for _, r := range ExpiredRunBranches(recs, now.Add(-7*24*time.Hour)) {
		got = append(got, r.ID)
	}
	if want := []string{"failed-old", "cancelled-old", "killed-old"}; !slices.Equal(got, want) {
		t.Fatalf("expired %v, want %v", got, want)
	}
}
