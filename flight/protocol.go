package flight

import (
	"encoding/json"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// ActionPrefix versions every action type. A change that breaks a body's
// meaning gets a new prefix; fields may be added within a version.
const ActionPrefix = "lakehouse.v1."

// Catalog actions. Each takes one JSON body and answers with one JSON
// result (described next to the body types below), except where noted.
const (
	ActionListBranches    = ActionPrefix + "ListBranches"    // {} → [Branch]
	ActionGetBranch       = ActionPrefix + "GetBranch"       // NameBody → Branch
	ActionCreateBranch    = ActionPrefix + "CreateBranch"    // CreateRefBody → Branch
	ActionDeleteBranch    = ActionPrefix + "DeleteBranch"    // NameBody → {}
	ActionRenameBranch    = ActionPrefix + "RenameBranch"    // RenameBody → Branch
	ActionListTags        = ActionPrefix + "ListTags"        // {} → [catalog.TagInfo]
	ActionCreateTag       = ActionPrefix + "CreateTag"       // CreateRefBody → catalog.TagInfo
	ActionDeleteTag       = ActionPrefix + "DeleteTag"       // NameBody → {}
	ActionResolve         = ActionPrefix + "Resolve"         // RefBody → Commit
	ActionLog             = ActionPrefix + "Log"             // RefBody → [Commit]
	ActionListNamespaces  = ActionPrefix + "ListNamespaces"  // RefBody → [string]
	ActionCreateNamespace = ActionPrefix + "CreateNamespace" // NamespaceBody → Commit
	ActionDeleteNamespace = ActionPrefix + "DeleteNamespace" // NamespaceBody → Commit
	ActionListTables      = ActionPrefix + "ListTables"      // TablesBody → [catalog.TableSummary]
	ActionGetTable        = ActionPrefix + "GetTable"        // TableBody → catalog.TableInfo
	ActionTableEntry      = ActionPrefix + "TableEntry"      // TableBody → TableEntryResult
	ActionDeleteTable     = ActionPrefix + "DeleteTable"     // TableBody → Commit
	ActionTableHistory    = ActionPrefix + "TableHistory"    // TableBody → [TableChange]
	ActionRevertTable     = ActionPrefix + "RevertTable"     // TableBody → Commit
	ActionImportTable     = ActionPrefix + "ImportTable"     // ImportBody → ImportResult
	ActionCommitTables    = ActionPrefix + "CommitTables"    // CommitTablesBody → Commit
	ActionMerge           = ActionPrefix + "Merge"           // MergeBody → MergeResult
	ActionDiff            = ActionPrefix + "Diff"            // DiffBody → catalog.DiffResult
	// ActionExplainQuery plans a query without running it.
	ActionExplainQuery = ActionPrefix + "ExplainQuery" // QueryCommand → ExplainResult
	// ActionServerInfo describes the server (version, role, the caller,
	// its data dir and how it would start functions).
	ActionServerInfo = ActionPrefix + "ServerInfo" // ServerInfoBody → ServerInfo
)

// Commit is a catalog commit with its id (the stored form has none: the
// id is the hash of the rest).
type Commit struct {
	ID         catalog.CommitID   `json:"id"`
	Parents    []catalog.CommitID `json:"parents"`
	Height     uint64             `json:"height"`
	Tree       catalog.TreeID     `json:"tree"`
	Author     string             `json:"author"`
	Message    string             `json:"message"`
	Time       time.Time          `json:"time"`
	Properties map[string]string  `json:"properties,omitempty"`
}

// WireCommit converts a commit for the wire (nil stays nil).
func WireCommit(c *catalog.Commit) *Commit {
	if c == nil {
		return nil
	}
	return &Commit{ID: c.ID, Parents: c.Parents, Height: c.Height, Tree: c.Tree, Author: c.Author,
		Message: c.Message, Time: c.Time, Properties: c.Properties}
}

// Catalog converts a wire commit back (nil stays nil).
func (c *Commit) Catalog() *catalog.Commit {
	if c == nil {
		return nil
	}
	return &catalog.Commit{ID: c.ID, Parents: c.Parents, Height: c.Height, Tree: c.Tree, Author: c.Author,
		Message: c.Message, Time: c.Time, Properties: c.Properties}
}

func wireCommits(cs []*catalog.Commit) []*Commit {
	out := make([]*Commit, len(cs))
	for i, c := range cs {
		out[i] = WireCommit(c)
	}
	return out
}

// Branch is a catalog.BranchInfo on the wire.
type Branch struct {
	Name   catalog.BranchName `json:"name"`
	Head   catalog.CommitID   `json:"head"`
	Commit *Commit            `json:"commit,omitempty"`
}

func wireBranch(b catalog.BranchInfo) Branch {
	return Branch{Name: b.Name, Head: b.Head, Commit: WireCommit(b.Commit)}
}

func (b Branch) catalog() catalog.BranchInfo {
	return catalog.BranchInfo{Name: b.Name, Head: b.Head, Commit: b.Commit.Catalog()}
}

// CommitOptions are the descriptive parts of a new commit. On a server
// with API keys the author is the key's user, whatever Author says.
type CommitOptions struct {
	Author     string            `json:"author,omitempty"`
	Message    string            `json:"message,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
}

func wireOptions(o catalog.CommitOptions) CommitOptions {
	return CommitOptions{Author: o.Author, Message: o.Message, Properties: o.Properties}
}

func (o CommitOptions) catalog() catalog.CommitOptions {
	return catalog.CommitOptions{Author: o.Author, Message: o.Message, Properties: o.Properties}
}

// NameBody names a branch or tag.
type NameBody struct {
	Name string `json:"name"`
}

// CreateRefBody creates a branch or tag named Name at the ref From.
type CreateRefBody struct {
	Name string `json:"name"`
	From string `json:"from"`
}

// RenameBody renames a branch.
type RenameBody struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// RefBody names a ref (a string ParseRef reads; empty for none) and a
// limit for listings (0: all).
type RefBody struct {
	Ref   string `json:"ref"`
	Limit int    `json:"limit,omitempty"`
}

// NamespaceBody changes a namespace on a branch.
type NamespaceBody struct {
	Branch    string        `json:"branch"`
	Namespace string        `json:"namespace"`
	Commit    CommitOptions `json:"commit"`
}

// TablesBody lists tables at a ref, in a namespace ("" for all).
type TablesBody struct {
	Ref       string `json:"ref"`
	Namespace string `json:"namespace,omitempty"`
}

// TableBody names a table at a ref (reads) or on a branch (writes); From
// is the ref RevertTable reverts to, Limit bounds TableHistory.
type TableBody struct {
	Ref       string        `json:"ref,omitempty"`
	Branch    string        `json:"branch,omitempty"`
	Namespace string        `json:"namespace"`
	Table     string        `json:"table"`
	From      string        `json:"from,omitempty"`
	Limit     int           `json:"limit,omitempty"`
	Commit    CommitOptions `json:"commit"`
}

func (b TableBody) ident() catalog.TableIdent {
	return catalog.TableIdent{Namespace: catalog.Namespace(b.Namespace), Name: b.Table}
}

// TableEntryResult is a table's raw catalog entry and the commit it was
// read at.
type TableEntryResult struct {
	Entry  catalog.TableEntry `json:"entry"`
	Commit *Commit            `json:"commit"`
}

// TableChange is a catalog.TableChange on the wire.
type TableChange struct {
	Commit             *Commit `json:"commit"`
	Change             string  `json:"change"`
	SnapshotID         int64   `json:"snapshot_id,omitempty"`
	ReplacedSnapshotID int64   `json:"replaced_snapshot_id,omitempty"`
	MetadataLocation   string  `json:"metadata_location,omitempty"`
}

// ImportBody imports files into a table on a branch. Sources are uploads
// of the caller: "upload:ID" names a file a DoPut sent before (see
// UploadCommand); paths on the server's machine are refused.
type ImportBody struct {
	Branch      string        `json:"branch"`
	Namespace   string        `json:"namespace"`
	Table       string        `json:"table"`
	Sources     []string      `json:"sources"`
	Mode        string        `json:"mode,omitempty"`
	PartitionBy []string      `json:"partition_by,omitempty"`
	Commit      CommitOptions `json:"commit"`
}

// ImportResult is a catalog.ImportResult on the wire.
type ImportResult struct {
	Created  bool     `json:"created"`
	Imported []string `json:"imported"`
	Skipped  []string `json:"skipped"`
	Rows     int64    `json:"rows"`
	Bytes    int64    `json:"bytes"`
	Warnings []string `json:"warnings"`
	Commit   *Commit  `json:"commit,omitempty"`
}

// CommitTablesBody commits table and namespace changes to a branch. A
// null table entry removes the table.
type CommitTablesBody struct {
	Branch     string                             `json:"branch"`
	Base       catalog.CommitID                   `json:"base"`
	Tables     map[string]*catalog.TableEntry     `json:"tables,omitempty"`
	Namespaces map[string]*catalog.NamespaceEntry `json:"namespaces,omitempty"`
	Commit     CommitOptions                      `json:"commit"`
}

// MergeBody merges Source into Into.
type MergeBody struct {
	Source string        `json:"source"`
	Into   string        `json:"into"`
	Mode   string        `json:"mode,omitempty"`
	Commit CommitOptions `json:"commit"`
}

// MergeResult is a catalog.MergeResult on the wire.
type MergeResult struct {
	Outcome  string           `json:"outcome"`
	Base     catalog.CommitID `json:"base"`
	Commit   *Commit          `json:"commit"`
	Changed  []string         `json:"changed_tables"`
	Combined []string         `json:"combined_tables,omitempty"`
}

// DiffBody compares two refs.
type DiffBody struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Schema bool   `json:"schema,omitempty"`
}

// QueryCommand is the FlightDescriptor command of a query (GetFlightInfo)
// and the body of ActionExplainQuery.
type QueryCommand struct {
	SQL       string `json:"sql"`
	Ref       string `json:"ref,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Locations says the client follows a FlightInfo endpoint's location:
	// a control plane may then place the query on a worker. Clients that
	// do not set it read every result from the server they asked.
	Locations bool `json:"locations,omitempty"`
	// Avoid are locations (host:port) the client could not read from: a
	// retry after a worker failed is placed elsewhere.
	Avoid []string `json:"avoid,omitempty"`
}

// ExplainResult is a query's plan: Text as `query --explain` prints it,
// Plan as it prints under -O json.
type ExplainResult struct {
	Text string          `json:"text"`
	Plan json.RawMessage `json:"plan"`
}

// ServerInfoBody asks ActionServerInfo how the server would start
// functions with a launcher and an isolation, named as `run --launcher`
// and `--isolation` name them ("" for auto). An empty body asks for auto.
type ServerInfoBody struct {
	Launcher  string `json:"launcher,omitempty"`
	Isolation string `json:"isolation,omitempty"`
}

// ServerInfo describes a server.
type ServerInfo struct {
	Version string `json:"version"`
	Role    string `json:"role"`
	// Auth says whether the server checks API keys.
	Auth bool `json:"auth"`
	// User and UserRole are the caller as the server sees it.
	User     string `json:"user,omitempty"`
	UserRole string `json:"user_role,omitempty"`
	// HostInfo is absent when the server does not describe its host.
	HostInfo
}

// HostInfo is where a server keeps its state, as paths on its machine,
// and how it would start functions there.
type HostInfo struct {
	DataDir   string `json:"data_dir,omitempty"`
	Catalog   string `json:"catalog,omitempty"`
	Warehouse string `json:"warehouse,omitempty"`
	// Launcher is "containerd" or "process"; ContainerdSocket the socket
	// of containerd, LauncherReason why the process launcher was chosen.
	Launcher         string `json:"launcher,omitempty"`
	ContainerdSocket string `json:"containerd_socket,omitempty"`
	LauncherReason   string `json:"launcher_reason,omitempty"`
	// Isolation says how functions are isolated, or plainly that they
	// are not.
	Isolation string `json:"isolation,omitempty"`
}
