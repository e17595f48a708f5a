package bolt

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// maxProblems bounds the problems Check reports; a file damaged that badly
// needs a restore, not a longer list.
const maxProblems = 100

// Check reads every key of every bucket and then runs bbolt's consistency
// check over the whole file (every page reachable once, nothing both used
// and free, keys in order). It returns what it found, each as an
// errdefs.ErrDataLoss error; err is for a Check that could not run. It
// reads the whole file: it is for `lakehouse doctor`, not for every open.
func (s *Store) Check(ctx context.Context) (problems []error, err error) {
	// The walk runs on this goroutine, where a fault on a bad page is
	// caught (see damage.go); bbolt's check runs on a goroutine of its own,
	// so it runs only once the walk has touched every reachable page.
	err = s.viewRaw(ctx, func(tx *bolt.Tx) error {
		var sum byte
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walkBucket(b, &sum) })
	})
	if err != nil {
		if errdefs.Is(err, errdefs.ErrDataLoss) {
			return []error{err}, nil
		}
		return nil, err
	}
	err = s.viewRaw(ctx, func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			// Read to the end: the check's goroutine stops only then.
			if len(problems) < maxProblems {
				problems = append(problems, damagedError(s.path, "%v", e))
			}
		}
		return nil
	})
	return problems, err
}

// walkBucket reads every byte of every key and value under b (into sum,
// so the reads happen): a value that points past its page faults here.
func walkBucket(b *bolt.Bucket, sum *byte) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := tooLong(b.Tx(), k, v); err != nil {
			return err
		}
		for _, x := range k {
			*sum ^= x
		}
		for _, x := range v {
			*sum ^= x
		}
		if v == nil {
			if sub := b.Bucket(k); sub != nil {
				if err := walkBucket(sub, sum); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Check checks every page of the file (see Store.Check).
func (sh *Shared) Check(ctx context.Context) (problems []error, err error) {
	err = sh.with(ctx, 0, func(s *Store) error {
		problems, err = s.Check(ctx)
		return err
	})
	return problems, err
}
