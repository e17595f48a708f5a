package flight

import (
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// Run actions. Run and Rerun stream RunEvents, one per result; RunLogs
// streams runrec.LogLines; the others answer one JSON result.
const (
	ActionRun       = ActionPrefix + "Run"       // RunBody → RunEvent...
	ActionRerun     = ActionPrefix + "Rerun"     // RerunBody → RunEvent...
	ActionGetRun    = ActionPrefix + "GetRun"    // RunIDBody → runrec.Record
	ActionListRuns  = ActionPrefix + "ListRuns"  // ListRunsBody → [runrec.Record]
	ActionRunLogs   = ActionPrefix + "RunLogs"   // RunLogsBody → runrec.LogLine...
	ActionCancelRun = ActionPrefix + "CancelRun" // RunIDBody → CancelRunResult
	ActionDeleteRun = ActionPrefix + "DeleteRun" // RunIDBody → DeleteRunResult
)

// Limits of the project a client sends with a run: a server's defaults
// (`serve --max-project-bytes`, `--max-project-unpacked` set others, up to
// the ceilings), and the bound of its entries.
const (
	// MaxProjectBytes bounds the gzip'd tar in RunBody.Project.
	MaxProjectBytes = 64 << 20
	// MaxProjectUnpacked bounds the bytes of its files once unpacked.
	MaxProjectUnpacked = 256 << 20
	// MaxProjectFiles bounds its entries (files and folders).
	MaxProjectFiles = 10000
	// MaxProjectBytesCeiling is the largest tar one RunBody carries: a
	// gRPC message of MaxMessageSize (256 MiB) holds it base64'd (4 bytes
	// for 3, 254 MiB) with room for the rest. Clients check a project
	// against the ceilings, servers against their limits.
	MaxProjectBytesCeiling = 190 << 20
	// MaxProjectUnpackedCeiling bounds a server's MaxProjectUnpacked.
	MaxProjectUnpackedCeiling = 4 << 30
)

// A RunBody with the largest project fits one message: the length is
// negative, and the build fails, otherwise.
var _ [MaxMessageSize - (MaxProjectBytesCeiling+2)/3*4 - 1<<20]struct{}

// RunBody starts a run of a project. The CLI's `run` flags map one to one.
type RunBody struct {
	// Project is the project folder as a gzip'd tar (base64 in JSON):
	// regular files and folders only, every path relative and inside the
	// folder (no absolute paths, no "..", no links or devices). Bounded by
	// the server's limits (default MaxProjectBytes, MaxProjectUnpacked) and
	// MaxProjectFiles.
	Project []byte `json:"project"`
	// Dir is the folder as the client named it: messages about its files
	// (file:line of planning errors) name them under it. ProjectDir is its
	// absolute path on the client, for the record.
	Dir        string `json:"dir,omitempty"`
	ProjectDir string `json:"project_dir,omitempty"`
	// Ref is the ref the run reads; without DryRun a branch it writes to.
	Ref string `json:"ref"`
	// Namespace of models and unqualified tables ("" : the project's
	// defaults.namespace, else ProfileNamespace).
	Namespace        string `json:"namespace,omitempty"`
	ProfileNamespace string `json:"profile_namespace,omitempty"`
	// Parameters are "name=value" as --param takes them.
	Parameters []string `json:"parameters,omitempty"`
	Strict     bool     `json:"strict,omitempty"`
	NoCache    bool     `json:"no_cache,omitempty"`
	NoFuse     bool     `json:"no_fuse,omitempty"`
	// Preview is "head" (default) or "off".
	Preview string `json:"preview,omitempty"`
	// KeepFailed is how long a failed run's branch stays ("7d", "12h",
	// "0"; default 7d).
	KeepFailed string `json:"keep_failed,omitempty"`
	// Launcher and Isolation are as `run --launcher/--isolation` (default
	// auto).
	Launcher  string `json:"launcher,omitempty"`
	Isolation string `json:"isolation,omitempty"`
	// DryRun plans only: the stream is one "plan" event.
	DryRun bool `json:"dry_run,omitempty"`
	// Detach ends the stream after the "started" event; the run goes on.
	Detach bool `json:"detach,omitempty"`
	// Priority orders runs waiting to start a function (1-10, higher
	// first; default 5). Queries always go first.
	Priority int `json:"priority,omitempty"`
	// User is the run's user on a server without keys (with keys: the
	// key's user).
	User string `json:"user,omitempty"`
}

// RerunBody reruns a recorded run (`lakehouse rerun`).
type RerunBody struct {
	RunID string `json:"run_id"`
	// Ref is the branch to write to (default: the run's target; created at
	// the run's start commit if missing).
	Ref        string `json:"ref,omitempty"`
	Strict     bool   `json:"strict,omitempty"`
	Preview    string `json:"preview,omitempty"` // default "off"
	KeepFailed string `json:"keep_failed,omitempty"`
	Launcher   string `json:"launcher,omitempty"`
	Isolation  string `json:"isolation,omitempty"`
	Detach     bool   `json:"detach,omitempty"`
	Priority   int    `json:"priority,omitempty"`
	User       string `json:"user,omitempty"`
}

// RunIDBody names a run by id or unique id prefix (at least 4 hex digits).
type RunIDBody struct {
	ID string `json:"id"`
}

// ListRunsBody lists runs, newest first.
type ListRunsBody struct {
	// Limit bounds the runs listed (0: all).
	Limit int `json:"limit,omitempty"`
}

// RunLogsBody reads a run's log lines.
type RunLogsBody struct {
	ID string `json:"id"`
	// Model keeps this model's lines (and the run's own) only.
	Model string `json:"model,omitempty"`
	// Follow keeps the stream open, sending new lines, until the run ends.
	Follow bool `json:"follow,omitempty"`
}

// CancelRunResult answers CancelRun: the run was asked to stop.
type CancelRunResult struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Target string `json:"target,omitempty"`
}

// DeleteRunResult answers DeleteRun.
type DeleteRunResult struct {
	Deleted       string `json:"deleted"`
	DeletedBranch string `json:"deleted_branch,omitempty"`
}

// Run event types (RunEvent.Type).
const (
	// EventPlan is a dry run's plan: Text as `run --dry-run` prints it,
	// Plan as `run --dry-run -O json` does.
	EventPlan = "plan"
	// EventStarted: the run is recorded and its branch exists (Record).
	EventStarted = "started"
	// EventState: Model moved to State after Elapsed (Rows when done).
	EventState = "state"
	// EventLog: a line Model's function printed on Stream at Time.
	EventLog = "log"
	// EventPreview: the first rows of Model's output (Text), Rows in all.
	EventPreview = "preview"
	// EventMessage and EventWarning: a note about Model (Text).
	EventMessage = "message"
	EventWarning = "warning"
	// EventNotice is a line for the client's stderr (a warning about the
	// launcher's isolation).
	EventNotice = "notice"
	// EventPrint is a line for the client's output (stderr under -O
	// json): a rerun's "created branch" and match results.
	EventPrint = "print"
	// EventDownload: how far the run's package downloads have got
	// (Files, FilesDone, Bytes of TotalBytes), for a live line.
	EventDownload = "download"
	// EventFinished: the run ended (Record); Error says why it failed.
	EventFinished = "finished"
)

// RunEvent is one event of a run's stream.
type RunEvent struct {
	Type   string         `json:"type"`
	RunID  string         `json:"run_id,omitempty"`
	Record *runrec.Record `json:"record,omitempty"`
	Model  string         `json:"model,omitempty"`
	State  string         `json:"state,omitempty"`
	// Elapsed is how long Model has been starting or running (ns).
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	Rows    int64         `json:"rows,omitempty"`
	Time    time.Time     `json:"time,omitzero"`
	Stream  string        `json:"stream,omitempty"`
	Text    string        `json:"text,omitempty"`
	// Plan is a dry run's plan as JSON text (`run --dry-run -O json`).
	Plan  string      `json:"plan,omitempty"`
	Error *RunFailure `json:"error,omitempty"`
	// Files, FilesDone, Bytes and TotalBytes: an EventDownload's.
	Files      int   `json:"files,omitempty"`
	FilesDone  int   `json:"files_done,omitempty"`
	Bytes      int64 `json:"bytes,omitempty"`
	TotalBytes int64 `json:"total_bytes,omitempty"`
}

// RunFailure is why a finished run failed, as the CLI reports it.
type RunFailure struct {
	Message string `json:"message"`
	// Class is "conflict" for a merge conflict (exit 4), else "failed"
	// (exit 1).
	Class string `json:"class"`
	Hint  string `json:"hint,omitempty"`
	// Model and Traceback are a failed Python function's, if one failed.
	Model     string `json:"model,omitempty"`
	Traceback string `json:"traceback,omitempty"`
}
