package flight

import (
	"github.com/lakehouse-dev/lakehouse/catalog"
)

// ActionGC collects the garbage of the server's warehouse: admin keys
// only. It answers one GCReport; when some files could not be deleted,
// the report of what was is followed by the error.
const ActionGC = ActionPrefix + "GC" // GCBody → GCReport

// GCBody asks for a garbage collection. The CLI's `gc` flags map one to
// one; durations are as the flags take them ("24h", "7d", "0").
type GCBody struct {
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Grace keeps files modified less than it ago (default 24h, at least
	// 1m).
	Grace string `json:"grace,omitempty"`
	// FailedRunsRetention is how long failed runs keep their branches
	// (default 7d; "0": none).
	FailedRunsRetention string `json:"failed_runs_retention,omitempty"`
	// ExpireCommits, if set, lets history older than it go (e.g. "30d").
	ExpireCommits string `json:"expire_commits,omitempty"`
}

// GCReport is what a garbage collection did, or in a dry run would do.
type GCReport struct {
	*catalog.GCResult
	// Warehouse is the URI of the warehouse collected.
	Warehouse string `json:"warehouse"`
	// ExpiredRuns are the failed runs whose branches were (or would be)
	// deleted.
	ExpiredRuns []ExpiredRun `json:"expired_run_branches"`
}

// ExpiredRun is a failed run whose branch gc deleted.
type ExpiredRun struct {
	Run    string `json:"run"`
	Branch string `json:"branch"`
}
