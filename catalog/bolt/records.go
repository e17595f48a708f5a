package bolt

import (
	"bytes"

	bolt "go.etcd.io/bbolt"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// recordBucket returns the bucket of one record kind, nil if no record of
// that kind was ever stored.
func (t *tx) recordBucket(kind string) (*bolt.Bucket, error) {
	if kind == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "catalog store: record kind is empty")
	}
	root, err := t.bucket(bucketRecords)
	if err != nil {
		return nil, err
	}
	return root.Bucket([]byte(kind)), nil
}

// lookup returns the value of key in b and whether it exists. bbolt's Get
// cannot tell an empty value from a missing key, so it seeks instead.
func lookup(b *bolt.Bucket, key []byte) ([]byte, bool) {
	if b == nil {
		return nil, false
	}
	k, v := b.Cursor().Seek(key)
	if !bytes.Equal(k, key) {
		return nil, false
	}
	return v, true
}

// GetRecord implements catalog.Tx.
func (t *tx) GetRecord(kind, key string) ([]byte, error) {
	b, err := t.recordBucket(kind)
	if err != nil {
		return nil, err
	}
	v, ok := lookup(b, []byte(key))
	if !ok {
		return nil, errdefs.New(errdefs.ErrNotFound, "%s record %q not found", kind, key)
	}
	if err := tooLong(t.tx, v); err != nil {
		return nil, err
	}
	return bytes.Clone(v), nil
}

// PutRecord implements catalog.Tx. It stores a copy of value.
func (t *tx) PutRecord(kind, key string, value []byte) error {
	if err := t.writable("PutRecord"); err != nil {
		return err
	}
	if kind == "" || key == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: PutRecord needs a kind and a key (got %q, %q)", kind, key)
	}
	root, err := t.bucket(bucketRecords)
	if err != nil {
		return err
	}
	sub := []byte(kind)
	b := root.Bucket(sub)
	if b == nil {
		t.logUndo(bucketRecords, sub, nil, nil, false)
		if b, err = root.CreateBucket(sub); err != nil {
			return errdefs.New(errdefs.ErrInternal, "catalog store: create records/%s: %v", kind, err)
		}
	}
	k := []byte(key)
	old, had := lookup(b, k)
	t.logUndo(bucketRecords, sub, k, old, had)
	// bbolt keeps value until the commit; the caller may reuse its slice.
	v := make([]byte, len(value))
	copy(v, value)
	return b.Put(k, v)
}

// DeleteRecord implements catalog.Tx.
func (t *tx) DeleteRecord(kind, key string) error {
	if err := t.writable("DeleteRecord"); err != nil {
		return err
	}
	b, err := t.recordBucket(kind)
	if err != nil {
		return err
	}
	k := []byte(key)
	old, ok := lookup(b, k)
	if !ok {
		return errdefs.New(errdefs.ErrNotFound, "%s record %q not found", kind, key)
	}
	t.logUndo(bucketRecords, []byte(kind), k, old, true)
	return b.Delete(k)
}

// ListRecords implements catalog.Tx. fn gets a copy of each value and may
// put or delete records (in an Update), even of the kind being walked: the
// walk seeks past the last key it returned rather than trusting a cursor
// across writes.
func (t *tx) ListRecords(kind, prefix string, fn func(key string, value []byte) error) error {
	b, err := t.recordBucket(kind)
	if err != nil || b == nil {
		return err
	}
	p := []byte(prefix)
	c := b.Cursor()
	k, v := c.Seek(p)
	for k != nil && bytes.HasPrefix(k, p) {
		if err := tooLong(t.tx, k, v); err != nil {
			return err
		}
		key := string(k)
		if err := fn(key, bytes.Clone(v)); err != nil {
			return err
		}
		// Seek to the first key after key. Seeking is cheap and stays
		// right if fn changed the bucket under the cursor.
		k, v = c.Seek(append([]byte(key), 0))
		if k != nil && string(k) <= key {
			// Only a damaged page sorts keys out of order; seeking
			// again would loop forever.
			return errdefs.New(errdefs.ErrDataLoss,
				"the catalog file is damaged: records/%s has key %q after %q; run `lakehouse doctor`", kind, k, key)
		}
	}
	return nil
}
