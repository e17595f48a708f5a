package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// CommitID is the lower-case hex SHA-256 of a commit's content.
type CommitID string

// Short is the 12-character form shown to people.
func (c CommitID) Short() string {
	if len(c) > 12 {
		return string(c[:12])
	}
	return string(c)
}

// TreeID is the lower-case hex SHA-256 of a tree's canonical encoding.
type TreeID string

// Commit is one immutable catalog state with its history.
type Commit struct {
	ID      CommitID   `json:"-"`
	Parents []CommitID `json:"parents"`
	// Height is 1 + the greatest height of the parents (1 for a root). It
	// orders the merge-base search.
	Height     uint64            `json:"height"`
	Tree       TreeID            `json:"tree"`
	Author     string            `json:"author"`
	Message    string            `json:"message"`
	Time       time.Time         `json:"time"`
	Properties map[string]string `json:"properties,omitempty"`
}

// Well-known commit properties.
const (
	PropRunID     = "lakehouse.run-id"
	PropOperation = "lakehouse.operation"
)

// ComputeID returns the content hash of c (ID excluded).
func (c *Commit) ComputeID() CommitID {
	b, err := json.Marshal(c)
	if err != nil {
		panic("catalog: commit is not encodable: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return CommitID(hex.EncodeToString(sum[:]))
}

// TableEntry is what a tree records for one table: the location of an
// immutable Iceberg metadata file plus a few facts copied from it so that
// listings and merges need not open the file. Two entries are the same table
// state exactly when their MetadataLocation is equal.
type TableEntry struct {
	MetadataLocation string `json:"metadata"`
	// TableUUID is the Iceberg table-uuid.
	TableUUID string `json:"uuid,omitempty"`
	// SnapshotID is the current snapshot, 0 for an empty table.
	SnapshotID int64 `json:"snapshot,omitempty"`
	// SchemaID is the current schema id.
	SchemaID int `json:"schema,omitempty"`
}

// NamespaceEntry is what a tree records for one namespace.
type NamespaceEntry struct {
	Properties map[string]string `json:"properties,omitempty"`
}

// Tree is the full content of a catalog state: namespaces and tables.
// Trees are immutable once stored; use Clone before changing one.
type Tree struct {
	Namespaces map[Namespace]NamespaceEntry `json:"namespaces"`
	Tables     map[TableIdent]TableEntry    `json:"tables"`
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	return &Tree{Namespaces: map[Namespace]NamespaceEntry{}, Tables: map[TableIdent]TableEntry{}}
}

// Clone returns a copy that can be changed without touching t.
func (t *Tree) Clone() *Tree {
	return &Tree{Namespaces: maps.Clone(t.Namespaces), Tables: maps.Clone(t.Tables)}
}

// ComputeID returns the content hash of the tree.
func (t *Tree) ComputeID() TreeID {
	b, err := t.MarshalJSON()
	if err != nil {
		panic("catalog: tree is not encodable: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return TreeID(hex.EncodeToString(sum[:]))
}

// TableNames returns the tables in namespace ns ("" for all), sorted.
func (t *Tree) TableNames(ns Namespace) []TableIdent {
	var out []TableIdent
	for id := range t.Tables {
		if ns == "" || id.Namespace == ns {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b TableIdent) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	return out
}

// treeJSON is the canonical encoding: tables as a map keyed "ns.name" so that
// encoding/json sorts it.
type treeJSON struct {
	Namespaces map[Namespace]NamespaceEntry `json:"namespaces"`
	Tables     map[string]TableEntry        `json:"tables"`
}

// MarshalJSON encodes the tree canonically (keys sorted).
func (t *Tree) MarshalJSON() ([]byte, error) {
	j := treeJSON{Namespaces: t.Namespaces, Tables: make(map[string]TableEntry, len(t.Tables))}
	if j.Namespaces == nil {
		j.Namespaces = map[Namespace]NamespaceEntry{}
	}
	for id, e := range t.Tables {
		j.Tables[id.String()] = e
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the canonical encoding.
func (t *Tree) UnmarshalJSON(b []byte) error {
	var j treeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t.Namespaces = j.Namespaces
	if t.Namespaces == nil {
		t.Namespaces = map[Namespace]NamespaceEntry{}
	}
	t.Tables = make(map[TableIdent]TableEntry, len(j.Tables))
	for k, e := range j.Tables {
		id, err := ParseTableIdent(k, "")
		if err != nil {
			return err
		}
		t.Tables[id] = e
	}
	return nil
}
