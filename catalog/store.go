package catalog

import "context"

// RefKind says which namespace of refs a name lives in.
type RefKind string

const (
	KindBranch RefKind = "branch"
	KindTag    RefKind = "tag"
)

// RefEntry is one named ref and the commit it points at.
type RefEntry struct {
	Name   string
	Commit CommitID
}

// Store keeps refs, commits, trees and small records. It knows nothing of
// merge or Iceberg: the versioning rules live in this package, on top of
// Store transactions. Implementations: catalog/bolt (on disk) and
// catalog/memstore (in memory); catalog/storetest is their conformance suite.
//
// A Store is safe for concurrent use. Update transactions are serialized
// (bolt may run several in one bbolt transaction, each seeing the writes of
// those before it); View transactions see a consistent snapshot. Calling
// View or Update from inside a View or Update function deadlocks.
//
// Choices both implementations share: FindCommits with limit <= 0 has no
// limit; PutTree of an id already stored is a no-op; an unknown ref kind or
// an empty name, key or id is ErrInvalidArgument; a ListRecords callback
// may put or delete records.
type Store interface {
	// View runs fn in a read-only transaction. fn must not keep tx.
	View(ctx context.Context, fn func(tx Tx) error) error
	// Update runs fn in a read-write transaction that commits atomically if
	// fn returns nil and is rolled back entirely if it returns an error
	// (which Update returns unchanged).
	Update(ctx context.Context, fn func(tx Tx) error) error
	// Close releases the store. Further calls fail.
	Close() error
}

// Tx is a store transaction. Write methods return ErrFailedPrecondition
// (errdefs) in a View transaction.
type Tx interface {
	// GetRef returns the commit a ref points at, or an error wrapping
	// errdefs.ErrNotFound if there is no such ref of that kind.
	GetRef(kind RefKind, name string) (CommitID, error)
	// PutRef creates or moves a ref.
	PutRef(kind RefKind, name string, id CommitID) error
	// DeleteRef removes a ref; ErrNotFound if it does not exist.
	DeleteRef(kind RefKind, name string) error
	// ListRefs returns all refs of a kind, sorted by name.
	ListRefs(kind RefKind) ([]RefEntry, error)

	// GetCommit returns a commit (with ID set), or ErrNotFound.
	GetCommit(id CommitID) (*Commit, error)
	// PutCommit stores c under c.ID. Storing the same commit twice is a
	// no-op. It returns ErrInvalidArgument if c.ID != c.ComputeID().
	PutCommit(c *Commit) error
	// FindCommits returns up to limit commit ids starting with prefix, sorted.
	FindCommits(prefix string, limit int) ([]CommitID, error)

	// GetTree returns a tree, or ErrNotFound. The caller must not modify it.
	GetTree(id TreeID) (*Tree, error)
	// PutTree stores t under id (which must be t.ComputeID()). Idempotent.
	PutTree(id TreeID, t *Tree) error

	// GetRecord, PutRecord, DeleteRecord and ListRecords keep small opaque
	// records by kind ("run", "profile", …) and key. GetRecord and
	// DeleteRecord return ErrNotFound for a missing key. ListRecords calls fn
	// for each key with the given prefix in key order; returning an error
	// from fn stops the walk and is returned.
	GetRecord(kind, key string) ([]byte, error)
	PutRecord(kind, key string, value []byte) error
	DeleteRecord(kind, key string) error
	ListRecords(kind, prefix string, fn func(key string, value []byte) error) error
}
