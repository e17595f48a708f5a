package catalog

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Service is the catalog as the CLI (and later the Flight and HTTP servers)
// see it. Local implements it over a Store and a TableFormat in this process;
// a remote client can implement it over the network without touching the
// commands.
//
// Errors are of the errdefs classes: ErrNotFound for a missing ref, table or
// namespace; ErrAlreadyExists when creating something that exists;
// ErrInvalidArgument for bad input; ErrConflict when a concurrent change or
// a merge conflicts; ErrFailedPrecondition when the state forbids the
// operation (writing to main other than by merge, writing to a tag, removing
// a non-empty namespace or the active branch).
type Service interface {
	// ListBranches returns every branch, sorted by name.
	ListBranches(ctx context.Context) ([]BranchInfo, error)
	// GetBranch returns a branch and its head commit.
	GetBranch(ctx context.Context, name BranchName) (BranchInfo, error)
	// CreateBranch creates a branch at from's commit. It copies no data.
	CreateBranch(ctx context.Context, name BranchName, from Ref) (BranchInfo, error)
	// DeleteBranch removes a branch (never main).
	DeleteBranch(ctx context.Context, name BranchName) error
	// RenameBranch renames a branch (never main).
	RenameBranch(ctx context.Context, from, to BranchName) (BranchInfo, error)

	// ListTags returns every tag, sorted by name.
	ListTags(ctx context.Context) ([]TagInfo, error)
	// CreateTag creates a tag at from's commit.
	CreateTag(ctx context.Context, name TagName, from Ref) (TagInfo, error)
	// DeleteTag removes a tag.
	DeleteTag(ctx context.Context, name TagName) error

	// Resolve returns the commit a ref denotes.
	Resolve(ctx context.Context, ref Ref) (*Commit, error)
	// Log returns up to limit commits reachable from ref, newest first
	// (limit <= 0: all).
	Log(ctx context.Context, ref Ref, limit int) ([]*Commit, error)

	// ListNamespaces returns the namespaces at ref, sorted.
	ListNamespaces(ctx context.Context, ref Ref) ([]Namespace, error)
	// CreateNamespace adds a namespace to a branch in a new commit.
	CreateNamespace(ctx context.Context, branch BranchName, ns Namespace, opts CommitOptions) (*Commit, error)
	// DeleteNamespace removes an empty namespace from a branch.
	DeleteNamespace(ctx context.Context, branch BranchName, ns Namespace, opts CommitOptions) (*Commit, error)

	// ListTables returns the tables at ref in ns ("" for every namespace).
	ListTables(ctx context.Context, ref Ref, ns Namespace) ([]TableSummary, error)
	// GetTable describes a table at ref: schema, snapshot, rows, files, spec.
	GetTable(ctx context.Context, ref Ref, id TableIdent) (*TableInfo, error)
	// TableEntry returns the raw catalog entry of a table at ref (for the
	// query and run paths, which read the Iceberg metadata themselves).
	TableEntry(ctx context.Context, ref Ref, id TableIdent) (TableEntry, *Commit, error)
	// DeleteTable removes a table from a branch in a new commit.
	DeleteTable(ctx context.Context, branch BranchName, id TableIdent, opts CommitOptions) (*Commit, error)
	// TableHistory lists the commits reachable from ref that changed the
	// table, newest first (limit <= 0: all). A change names its snapshot
	// only if the table's metadata at ref holds it (see TableChange).
	TableHistory(ctx context.Context, ref Ref, id TableIdent, limit int) ([]TableChange, error)
	// RevertTable sets a table on a branch to its state at from (removing it
	// if it does not exist there) in a new commit.
	RevertTable(ctx context.Context, branch BranchName, id TableIdent, from Ref, opts CommitOptions) (*Commit, error)
	// ImportTable imports Parquet, CSV and Arrow IPC files into a table on
	// a branch, creating the table if needed, in one commit (or none, on
	// any error).
	ImportTable(ctx context.Context, req ImportRequest) (*ImportResult, error)
	// CommitTables applies many table changes to a branch in one atomic
	// commit. base is the commit the changes were computed against: if the
	// branch moved since, the commit rebases onto the new head unless a
	// changed table also changed there (ErrConflict naming the table).
	CommitTables(ctx context.Context, branch BranchName, base CommitID, changes Changes, opts CommitOptions) (*Commit, error)

	// Merge merges source into a branch.
	Merge(ctx context.Context, req MergeRequest) (*MergeResult, error)
	// Diff compares two refs table by table.
	Diff(ctx context.Context, from, to Ref, opts DiffOptions) (*DiffResult, error)

	// Close releases the service and its store.
	Close() error
}

// BranchInfo describes a branch.
type BranchInfo struct {
	Name BranchName `json:"name"`
	Head CommitID   `json:"head"`
	// Commit is the head commit.
	Commit *Commit `json:"commit,omitempty"`
}

// TagInfo describes a tag.
type TagInfo struct {
	Name   TagName  `json:"name"`
	Commit CommitID `json:"commit"`
}

// CommitOptions are the descriptive parts of a new commit.
type CommitOptions struct {
	Author     string
	Message    string
	Properties map[string]string
}

// Changes is a set of table and namespace changes for one commit. A nil
// entry removes the table or namespace.
type Changes struct {
	Tables     map[TableIdent]*TableEntry
	Namespaces map[Namespace]*NamespaceEntry
}

// TableSummary is one row of a table listing.
type TableSummary struct {
	Ident      TableIdent `json:"-"`
	Namespace  Namespace  `json:"namespace"`
	Name       string     `json:"name"`
	SnapshotID int64      `json:"snapshot_id"`
	Metadata   string     `json:"metadata_location"`
}

// Column is one field of a table schema.
type Column struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
}

// PartitionField is one field of a partition spec.
type PartitionField struct {
	SourceColumn string `json:"source"`
	Transform    string `json:"transform"`
	Name         string `json:"name"`
}

// SnapshotInfo describes an Iceberg snapshot.
type SnapshotInfo struct {
	ID        int64             `json:"id"`
	ParentID  int64             `json:"parent_id,omitempty"`
	Time      time.Time         `json:"time"`
	Operation string            `json:"operation"`
	Summary   map[string]string `json:"summary,omitempty"`
	// ReplacedSnapshotID is set on a snapshot a merge wrote: the merged
	// side's snapshot whose files it appended to this side, which stands
	// in for it here (that snapshot is in the other side's metadata only).
	ReplacedSnapshotID int64 `json:"replaced_snapshot_id,omitempty"`
}

// DataFileInfo describes one data file of a table's current snapshot.
type DataFileInfo struct {
	Path    string `json:"path"`
	Format  string `json:"format"`
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
	// Partition is the file's partition tuple as text by partition field
	// name; a null value reads "null" here and is null in JSON.
	Partition map[string]string `json:"partition,omitempty"`
	// NullPartitions names the fields of Partition whose value is null.
	NullPartitions []string `json:"-"`
}

// MarshalJSON writes Partition with null for the null values.
func (d DataFileInfo) MarshalJSON() ([]byte, error) {
	type plain DataFileInfo
	v := struct {
		plain
		Partition map[string]*string `json:"partition,omitempty"`
	}{plain: plain(d)}
	if d.Partition != nil {
		v.Partition = make(map[string]*string, len(d.Partition))
		for k, s := range d.Partition {
			if slices.Contains(d.NullPartitions, k) {
				v.Partition[k] = nil
			} else {
				v.Partition[k] = &s
			}
		}
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON writes: a null partition value
// reads "null" in Partition and is named in NullPartitions.
func (d *DataFileInfo) UnmarshalJSON(b []byte) error {
	type plain DataFileInfo
	v := struct {
		*plain
		Partition map[string]*string `json:"partition,omitempty"`
	}{plain: (*plain)(d)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	d.Partition, d.NullPartitions = nil, nil
	if v.Partition != nil {
		d.Partition = make(map[string]string, len(v.Partition))
		for _, k := range slices.Sorted(maps.Keys(v.Partition)) {
			if p := v.Partition[k]; p != nil {
				d.Partition[k] = *p
			} else {
				d.Partition[k] = "null"
				d.NullPartitions = append(d.NullPartitions, k)
			}
		}
	}
	return nil
}

// TableInfo is the full description of a table at a ref.
type TableInfo struct {
	Ident         TableIdent       `json:"-"`
	Namespace     Namespace        `json:"namespace"`
	Name          string           `json:"name"`
	Commit        CommitID         `json:"commit"`
	Metadata      string           `json:"metadata_location"`
	TableUUID     string           `json:"table_uuid"`
	FormatVersion int              `json:"format_version"`
	Location      string           `json:"location"`
	Schema        []Column         `json:"schema"`
	PartitionSpec []PartitionField `json:"partition_spec"`
	Snapshot      *SnapshotInfo    `json:"snapshot,omitempty"`
	Snapshots     int              `json:"snapshot_count"`
	RowCount      int64            `json:"row_count"`
	FileCount     int              `json:"file_count"`
	TotalBytes    int64            `json:"total_bytes"`
	Files         []DataFileInfo   `json:"files"`
}

// TableChange is one commit in a table's history.
type TableChange struct {
	Commit *Commit `json:"commit"`
	// Change is "created", "updated" or "removed".
	Change string `json:"change"`
	// SnapshotID is the table's snapshot after the commit, set only when
	// the table's metadata at the ref the history was read at holds it,
	// so that a reader of that metadata file can select it by id. It is 0
	// for a removal and for a state that metadata does not hold: a commit
	// of a merged branch whose snapshot the merge replaced (see
	// ReplacedSnapshotID), or a state a revert left behind; read those at
	// the commit (`-r @<commit>`), whose metadata is MetadataLocation.
	SnapshotID int64 `json:"snapshot_id,omitempty"`
	// ReplacedSnapshotID is set when the commit's snapshot was written by a
	// merge: the merged branch's snapshot it stands in for (not in the
	// ref's metadata).
	ReplacedSnapshotID int64 `json:"replaced_snapshot_id,omitempty"`
	// MetadataLocation is the metadata file of the table's state after the
	// commit ("" for a removal).
	MetadataLocation string `json:"metadata_location,omitempty"`
}

// ImportMode says what an import does to existing rows.
type ImportMode string

const (
	// ImportAppend adds the rows to the table. The files must have the
	// table's columns.
	ImportAppend ImportMode = "append"
	// ImportReplace replaces every row of the table. The files may have
	// other columns than the table: the table then takes the files'
	// schema (columns of the same name keep their field ids) and keeps
	// its partition spec if its source columns are still there (else it
	// becomes unpartitioned). PartitionBy, if given, sets a new spec.
	ImportReplace ImportMode = "replace"
	// ImportOverwritePartitions is a dynamic partition overwrite: every
	// data file whose partition (under the table's current spec) holds any
	// of the new rows is replaced; files of other partitions stay. The
	// files must have the table's columns. On an unpartitioned table it is
	// ImportReplace; a missing table is created (with PartitionBy).
	ImportOverwritePartitions ImportMode = "overwrite-partitions"
)

// ImportModes lists the valid import modes.
var ImportModes = []ImportMode{ImportAppend, ImportReplace, ImportOverwritePartitions}

// Valid reports whether m is one of ImportModes.
func (m ImportMode) Valid() bool { return slices.Contains(ImportModes, m) }

// ImportModeHint is the hint of an error about an unknown import mode.
const ImportModeHint = "use append, replace or overwrite-partitions"

// PartitionByExistingError is the error of an import that gives partition
// fields for an existing table in a mode other than ImportReplace.
func PartitionByExistingError(t TableIdent) error {
	return errdefs.WithHint(errdefs.ErrInvalidArgument, "drop --partitioned-by, import into a new table, or use --mode replace",
		"table %s already exists; --partitioned-by applies only when an import creates or replaces a table", t)
}

// ImportRequest asks for files to be imported into a table on a branch.
type ImportRequest struct {
	Branch BranchName
	Table  TableIdent
	// Sources are file paths, directories or glob patterns of Parquet
	// (.parquet), CSV (.csv) and Arrow IPC files (.arrow, .feather, .ipc,
	// or any file starting with the magic bytes "ARROW1").
	Sources []string
	// Staged are files a client sent to the server (see StagedSource),
	// imported after Sources.
	Staged []StagedSource
	// Mode is ImportAppend when empty.
	Mode ImportMode
	// PartitionBy lists partition fields for a new table, or the new spec
	// of a table ImportReplace replaces: a column name ("country") or a
	// transform ("day(ts)", "bucket(16,id)").
	PartitionBy []string
	Commit      CommitOptions
	// Progress, if set, is called as the import reads its input (from
	// the goroutine that reads; calls never overlap).
	Progress func(ImportProgress)
}

// ImportProgress is how far an import has read its input.
type ImportProgress struct {
	// Rows and Bytes are read so far (Bytes estimated within a file by
	// its share of rows); TotalBytes is the size of every file to read.
	Rows, Bytes, TotalBytes int64
}

// StagedSource is a file a client of the server read on its machine and
// sent, staged on the server's disk as an Arrow IPC file. The import reads
// Path but names the file, records it and skips it when already imported
// by the client's identity: Name, Size and MtimeNs, as embedded mode does
// for a local file.
type StagedSource struct {
	// Path is the staged Arrow IPC file on this machine.
	Path string
	// Name is the file as the client named it (its path there).
	Name string
	// Size and MtimeNs are the client's file's size and modification time.
	Size, MtimeNs int64
	// Format is "" for Arrow columns of the file's own types, or
	// StagedCSV for a CSV file whose fields travel as text (string
	// columns, NULL for an empty field): the import infers and parses
	// their types exactly as for a local CSV file.
	Format string
}

// StagedCSV is the StagedSource.Format of CSV text.
const StagedCSV = "csv"

// ImportResult reports what an import did.
type ImportResult struct {
	Table    TableIdent `json:"-"`
	Created  bool       `json:"created"`
	Imported []string   `json:"imported"`
	Skipped  []string   `json:"skipped"`
	Rows     int64      `json:"rows"`
	Bytes    int64      `json:"bytes"`
	// Warnings name what the import changed in the data (nanosecond
	// timestamps cut to microseconds), one line each.
	Warnings []string `json:"warnings"`
	// Commit is nil when nothing was imported (every file skipped).
	Commit *Commit `json:"commit,omitempty"`
}

// MergeMode selects fast-forward behaviour.
type MergeMode string

const (
	MergeFFAllowed MergeMode = ""        // fast-forward when possible
	MergeFFOnly    MergeMode = "ff-only" // fail unless a fast-forward is possible
	MergeNoFF      MergeMode = "no-ff"   // always create a merge commit
)

// MergeRequest asks for source to be merged into a branch.
type MergeRequest struct {
	Source Ref
	Into   BranchName
	Mode   MergeMode
	Commit CommitOptions
}

// MergeResult reports the outcome of a merge.
type MergeResult struct {
	// Outcome is "fast-forward", "merge" or "up-to-date".
	Outcome string   `json:"outcome"`
	Base    CommitID `json:"base"`
	Commit  *Commit  `json:"commit"`
	Changed []string `json:"changed_tables"`
	// Combined lists tables both sides appended to, merged by combining files.
	Combined []string `json:"combined_tables,omitempty"`
}

// MergeConflictError is returned (wrapping errdefs.ErrConflict) when both
// sides changed the same tables.
type MergeConflictError struct {
	Source, Into string
	Conflicts    []Conflict
}

// Conflict is one table (or namespace) changed on both sides of a merge.
type Conflict struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// DiffOptions tune a diff.
type DiffOptions struct {
	// Schema asks for column-level schema changes of changed tables.
	Schema bool
}

// DiffResult lists the differences between two refs.
type DiffResult struct {
	From       CommitID        `json:"from"`
	To         CommitID        `json:"to"`
	Tables     []TableDiff     `json:"tables"`
	Namespaces []NamespaceDiff `json:"namespaces"`
}

// TableDiff is one table that differs.
type TableDiff struct {
	Table string `json:"table"`
	// Change is "added", "removed" or "changed".
	Change       string         `json:"change"`
	FromSnapshot int64          `json:"from_snapshot,omitempty"`
	ToSnapshot   int64          `json:"to_snapshot,omitempty"`
	Schema       []SchemaChange `json:"schema_changes,omitempty"`
}

// NamespaceDiff is one namespace added or removed.
type NamespaceDiff struct {
	Namespace string `json:"namespace"`
	Change    string `json:"change"`
}

// SchemaChange is one column-level difference.
type SchemaChange struct {
	// Change is "added", "removed", "type" or "nullability".
	Change string `json:"change"`
	Column string `json:"column"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
}

// TableFormat reads and writes table data and metadata. catalog/iceberg
// implements it with apache/iceberg-go. Every method writes only new
// objects: nothing is visible until the catalog commits the returned entry.
type TableFormat interface {
	// Import writes the files of spec as a new table state. spec.Current is
	// nil when the table does not exist yet. Errors: ErrInvalidArgument for
	// unreadable files or a schema that conflicts with the table (naming
	// the file, column and both types; ImportReplace changes the table's
	// schema instead); ErrNotFound for sources that match nothing.
	Import(ctx context.Context, spec ImportSpec) (*ImportOutcome, error)
	// Describe loads a table state.
	Describe(ctx context.Context, id TableIdent, e TableEntry) (*TableInfo, error)
	// Snapshots lists the snapshots a table state's metadata holds, in
	// the order it lists them (the ids a reader of that metadata may
	// select). Errors: ErrNotFound when the metadata file does not exist.
	Snapshots(ctx context.Context, id TableIdent, e TableEntry) ([]SnapshotInfo, error)
	// MergeAppends combines two table states that both derive from base by
	// appends only (same schema and spec), returning a state holding the
	// files of both. ok is false (and err nil) when either side did
	// anything but append since base.
	MergeAppends(ctx context.Context, id TableIdent, base, ours, theirs TableEntry) (merged TableEntry, ok bool, err error)
	// SchemaDiff lists column changes from a to b.
	SchemaDiff(ctx context.Context, a, b TableEntry) ([]SchemaChange, error)
}

// ImportSpec is what the catalog asks of the TableFormat for an import.
type ImportSpec struct {
	Ident TableIdent
	// Current is the table's present state, nil to create the table.
	Current *TableEntry
	// Sources as given by the user: files, directories, globs.
	Sources []string
	// Staged are files a client sent, read after Sources.
	Staged      []StagedSource
	Mode        ImportMode
	PartitionBy []string
	// SnapshotProperties are added to the Iceberg snapshot summary.
	SnapshotProperties map[string]string
	// Progress is ImportRequest.Progress.
	Progress func(ImportProgress)
}

// ImportOutcome is what an import wrote.
type ImportOutcome struct {
	// Entry is the new table state; equal to *Current when every file was
	// skipped.
	Entry    TableEntry
	Created  bool
	Imported []string
	Skipped  []string
	Rows     int64
	Bytes    int64
	// Warnings name what the import changed in the data, one line each.
	Warnings []string
}

func (e *MergeConflictError) Error() string {
	msg := "merge of " + e.Source + " into " + e.Into + " has conflicts in " + itoa(len(e.Conflicts)) + " table(s):"
	for _, c := range e.Conflicts {
		msg += "\n  " + c.Name + ": " + c.Reason
	}
	return msg + "\nresolve by reverting the table on one side (`lakehouse table revert NAME --from REF`) and merge again"
}

// Unwrap makes errors.Is(err, errdefs.ErrConflict) hold.
func (e *MergeConflictError) Unwrap() error { return errdefs.ErrConflict }

func itoa(n int) string { return strconv.Itoa(n) }
