package bolt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	bolt "go.etcd.io/bbolt"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// tx is a catalog.Tx over one bbolt transaction. Values bbolt returns point
// into the memory map and are valid only until the transaction ends, so every
// value handed to the caller is decoded or copied first.
type tx struct {
	tx *bolt.Tx
	// undo says how to take back each write of this Update, oldest first
	// (see commit.go). Only Updates write.
	undo []undoOp
}

var _ catalog.Tx = (*tx)(nil)

// writable returns an errdefs.ErrFailedPrecondition error if tx is a View.
func (t *tx) writable(op string) error {
	if !t.tx.Writable() {
		return errdefs.New(errdefs.ErrFailedPrecondition, "catalog store: %s in a read-only transaction", op)
	}
	return nil
}

// bucket returns a top-level bucket of the layout. Open created them all, so
// a missing one means the file was damaged after Open.
func (t *tx) bucket(name []byte) (*bolt.Bucket, error) {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil, errdefs.New(errdefs.ErrDataLoss, "the catalog file is damaged: bucket %q is missing; run `lakehouse doctor`", name)
	}
	return b, nil
}

func refBucketName(kind catalog.RefKind) []byte {
	switch kind {
	case catalog.KindBranch:
		return bucketBranches
	case catalog.KindTag:
		return bucketTags
	}
	return nil
}

func (t *tx) refBucket(kind catalog.RefKind) (*bolt.Bucket, error) {
	name := refBucketName(kind)
	if name == nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "catalog store: unknown ref kind %q", kind)
	}
	return t.bucket(name)
}

// GetRef implements catalog.Tx.
func (t *tx) GetRef(kind catalog.RefKind, name string) (catalog.CommitID, error) {
	b, err := t.refBucket(kind)
	if err != nil {
		return "", err
	}
	v := b.Get([]byte(name))
	if v == nil {
		return "", errdefs.New(errdefs.ErrNotFound, "%s %q not found", kind, name)
	}
	if err := tooLong(t.tx, v); err != nil {
		return "", err
	}
	return catalog.CommitID(v), nil
}

// PutRef implements catalog.Tx.
func (t *tx) PutRef(kind catalog.RefKind, name string, id catalog.CommitID) error {
	if err := t.writable("PutRef"); err != nil {
		return err
	}
	b, err := t.refBucket(kind)
	if err != nil {
		return err
	}
	if name == "" || id == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: PutRef needs a name and a commit id (got %s %q → %q)", kind, name, id)
	}
	key := []byte(name)
	old := b.Get(key)
	t.logUndo(refBucketName(kind), nil, key, old, old != nil)
	return b.Put(key, []byte(id))
}

// DeleteRef implements catalog.Tx.
func (t *tx) DeleteRef(kind catalog.RefKind, name string) error {
	if err := t.writable("DeleteRef"); err != nil {
		return err
	}
	b, err := t.refBucket(kind)
	if err != nil {
		return err
	}
	key := []byte(name)
	old := b.Get(key)
	if old == nil {
		return errdefs.New(errdefs.ErrNotFound, "%s %q not found", kind, name)
	}
	t.logUndo(refBucketName(kind), nil, key, old, true)
	return b.Delete(key)
}

// ListRefs implements catalog.Tx.
func (t *tx) ListRefs(kind catalog.RefKind) ([]catalog.RefEntry, error) {
	b, err := t.refBucket(kind)
	if err != nil {
		return nil, err
	}
	var out []catalog.RefEntry
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := tooLong(t.tx, k, v); err != nil {
			return nil, err
		}
		out = append(out, catalog.RefEntry{Name: string(k), Commit: catalog.CommitID(v)})
	}
	return out, nil
}

// GetCommit implements catalog.Tx.
func (t *tx) GetCommit(id catalog.CommitID) (*catalog.Commit, error) {
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return nil, err
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, "commit %s not found", id)
	}
	if err := tooLong(t.tx, v); err != nil {
		return nil, err
	}
	c := new(catalog.Commit)
	if err := json.Unmarshal(v, c); err != nil {
		return nil, errdefs.New(errdefs.ErrDataLoss, "the catalog file is damaged: commits/%s cannot be decoded: %v", id, err)
	}
	c.ID = id
	return c, nil
}

// PutCommit implements catalog.Tx.
func (t *tx) PutCommit(c *catalog.Commit) error {
	if err := t.writable("PutCommit"); err != nil {
		return err
	}
	if c == nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: PutCommit of a nil commit")
	}
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return err
	}
	// One encoding serves both the id check and the stored value; this is
	// exactly Commit.ComputeID (hex SHA-256 of the JSON encoding).
	v, err := json.Marshal(c)
	if err != nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: commit %s cannot be encoded: %v", c.ID, err)
	}
	if want := hashHex(v); string(c.ID) != want {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: commit id %q does not match its content (%s)", c.ID, want)
	}
	key := []byte(c.ID)
	if b.Get(key) != nil {
		return nil // content-addressed: already stored means same content
	}
	t.logUndo(bucketCommits, nil, key, nil, false)
	return b.Put(key, v)
}

// FindCommits implements catalog.Tx. A limit <= 0 means no limit.
func (t *tx) FindCommits(prefix string, limit int) ([]catalog.CommitID, error) {
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return nil, err
	}
	var out []catalog.CommitID
	p := []byte(prefix)
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		if limit > 0 && len(out) == limit {
			break
		}
		if err := tooLong(t.tx, k); err != nil {
			return nil, err
		}
		out = append(out, catalog.CommitID(k))
	}
	return out, nil
}

// GetTree implements catalog.Tx. Each call decodes a new Tree.
func (t *tx) GetTree(id catalog.TreeID) (*catalog.Tree, error) {
	b, err := t.bucket(bucketTrees)
	if err != nil {
		return nil, err
	}
	v := b.Get([]byte(id))
	if v == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, "tree %s not found", id)
	}
	if err := tooLong(t.tx, v); err != nil {
		return nil, err
	}
	tr := new(catalog.Tree)
	if err := tr.UnmarshalJSON(v); err != nil {
		return nil, errdefs.New(errdefs.ErrDataLoss, "the catalog file is damaged: trees/%s cannot be decoded: %v", id, err)
	}
	return tr, nil
}

// PutTree implements catalog.Tx. If id is already stored it returns nil
// without encoding tr: trees are content-addressed, and re-encoding a large
// tree on every commit that does not change it would be wasted work. So the
// id check (ErrInvalidArgument) applies to new trees only.
func (t *tx) PutTree(id catalog.TreeID, tr *catalog.Tree) error {
	if err := t.writable("PutTree"); err != nil {
		return err
	}
	if tr == nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: PutTree of a nil tree")
	}
	b, err := t.bucket(bucketTrees)
	if err != nil {
		return err
	}
	key := []byte(id)
	if len(key) > 0 && b.Get(key) != nil {
		return nil
	}
	// This is exactly Tree.ComputeID: hex SHA-256 of the canonical encoding.
	v, err := tr.MarshalJSON()
	if err != nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: tree %s cannot be encoded: %v", id, err)
	}
	if want := hashHex(v); string(id) != want {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: tree id %q does not match its content (%s)", id, want)
	}
	t.logUndo(bucketTrees, nil, key, nil, false)
	return b.Put(key, v)
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
