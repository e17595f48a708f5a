package bolt

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Group commit.
//
// A synced bbolt commit costs two fdatasyncs, which dwarfs the work of a
// catalog commit. Updates that arrive while one is in progress therefore
// share the next bbolt transaction: one goroutine, the committer, begins it
// and gives each waiting Update its turn on it, one after the other; then it
// commits once and tells every Update that succeeded how the commit went.
//
// Each fn still runs exactly once, on its caller's goroutine (so a panic or
// t.Fatal in fn behaves as usual), and sees the writes of the Updates before
// it in the batch. An fn that fails must leave no trace while the others in
// its batch commit, and bbolt has no savepoints, so the tx of an Update logs
// how to undo each write, and a failed fn's writes are undone before the next
// fn's turn. If undoing fails the whole batch is abandoned.
//
// A failed Update returns as soon as its writes are undone. If the batch's
// commit then fails (a disk error), that Update may have based its error on
// writes of the Updates before it that never became durable; those Updates
// do get the commit error.

// maxBatch bounds the Updates sharing one bbolt transaction.
const maxBatch = 64

// request is one Update waiting for, or taking, its turn.
type request struct {
	turn      chan turn    // committer → Update: run fn now (or fail)
	finished  chan outcome // Update → committer: fn is done
	committed chan error   // committer → Update: the batch commit's result
}

type turn struct {
	tx  *bolt.Tx
	err error // the batch could not start; fn must not run
}

type outcome int

const (
	fnSucceeded outcome = iota
	fnFailed            // fn returned an error or panicked; its writes are undone
	fnPoisoned          // fn failed and its writes could not be undone
)

// Update runs fn in a read-write transaction, committed (and synced unless
// Options.NoSync) if fn returns nil and rolled back if it returns an error,
// which Update returns unchanged. Updates are serialized, and concurrent ones
// share a commit (see above). Update returns ctx.Err() without running fn if
// ctx is done before fn's turn.
func (s *Store) Update(ctx context.Context, fn func(tx catalog.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return errdefs.New(errdefs.ErrFailedPrecondition, "catalog store %s is open read-only", s.path)
	}
	if err := s.Damaged(); err != nil {
		return err
	}
	// fn reads the memory map through its tx.
	defer s.catchDamage(&err, guardFault())
	r := &request{
		turn:      make(chan turn, 1),
		finished:  make(chan outcome, 1),
		committed: make(chan error, 1),
	}
	select {
	case s.requests <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return s.closedError()
	}
	tn := <-r.turn
	if tn.err != nil {
		return tn.err
	}
	if err := ctx.Err(); err != nil {
		r.finished <- fnFailed
		return err
	}
	t := &tx{tx: tn.tx}
	succeeded := false
	defer func() {
		// fn returned an error, panicked or called runtime.Goexit: undo
		// its writes and hand the transaction back either way.
		if !succeeded {
			r.finished <- t.rollback()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	succeeded = true
	r.finished <- fnSucceeded
	return <-r.committed
}

// commitLoop is the committer goroutine. It runs until quit is closed.
//
// When fewer Updates wait than the previous batch held, the committer
// lingers for the others, up to half as long as the previous batch took
// (at most maxLinger): writers that answer a network client come back a
// round trip after their commit, which is later than the next batch would
// start, and a batch of half of them costs a whole sync. The linger ends
// as soon as the batch is as large as the previous one, so a lone writer
// never waits, and after a drop in writers only one batch waits in vain.
func (s *Store) commitLoop() {
	defer close(s.loopDone)
	var (
		prevSize int           // Updates in the previous batch
		prevTook time.Duration // how long it took, sync included
	)
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		var first *request
		select {
		case first = <-s.requests:
		case <-s.quit:
			return
		}
		// Let Updates that are about to arrive join this batch.
		runtime.Gosched()
		batch := []*request{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-s.requests:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if len(batch) < prevSize {
			batch = s.linger(batch, prevSize, min(prevTook/2, maxLinger))
		}
		s.batches.Add(1)
		s.batched.Add(int64(len(batch)))
		start := time.Now()
		s.runBatch(batch)
		prevSize, prevTook = len(batch), time.Since(start)
	}
}

// CommitStats counts the group commits of a Store.
type CommitStats struct {
	// Batches is the number of bbolt transactions the committer began,
	// Updates the number of Updates that took their turn in them.
	Batches, Updates int64
}

// CommitStats reports the group commits since Open: Updates/Batches is
// how many Updates shared a sync on average.
func (s *Store) CommitStats() CommitStats {
	return CommitStats{Batches: s.batches.Load(), Updates: s.batched.Load()}
}

// maxLinger bounds how long a batch waits for more Updates.
const maxLinger = 2 * time.Millisecond

// linger adds Updates to batch until it holds want of them, d has passed
// or the store closes.
func (s *Store) linger(batch []*request, want int, d time.Duration) []*request {
	if d <= 0 {
		return batch
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for len(batch) < want && len(batch) < maxBatch {
		select {
		case r := <-s.requests:
			batch = append(batch, r)
		case <-t.C:
			return batch
		case <-s.quit:
			return batch
		}
	}
	return batch
}

// runBatch gives each request its turn on one bbolt transaction and commits
// the work of those that succeeded.
func (s *Store) runBatch(batch []*request) {
	bt, err := s.beginWrite()
	if err != nil {
		for _, r := range batch {
			r.turn <- turn{err: err}
		}
		return
	}
	var ok []*request
	for i, r := range batch {
		r.turn <- turn{tx: bt}
		switch <-r.finished {
		case fnSucceeded:
			ok = append(ok, r)
		case fnPoisoned:
			_ = bt.Rollback()
			err := errdefs.New(errdefs.ErrInternal,
				"catalog store %s: a concurrent update failed and could not be undone, so this one was rolled back too; retry it", s.path)
			for _, r := range ok {
				r.committed <- err
			}
			// The rest have not run yet: they get a fresh transaction.
			if rest := batch[i+1:]; len(rest) > 0 {
				s.runBatch(rest)
			}
			return
		}
	}
	if len(ok) == 0 {
		_ = bt.Rollback()
		return
	}
	if err := s.commitWrite(bt); err != nil {
		for _, r := range ok {
			r.committed <- err
		}
		return
	}
	for _, r := range ok {
		r.committed <- nil
	}
}

// beginWrite begins the batch's bbolt transaction.
func (s *Store) beginWrite() (bt *bolt.Tx, err error) {
	if err := s.Damaged(); err != nil {
		return nil, err
	}
	defer s.catchDamage(&err, guardFault())
	bt, err = s.db.Begin(true)
	if err != nil {
		return nil, s.beginError(err)
	}
	return bt, nil
}

// commitWrite commits the batch's transaction. If bbolt faults or panics
// on a damaged page it rolls the transaction back; if even that fails the
// store is wedged (see Close).
func (s *Store) commitWrite(bt *bolt.Tx) (err error) {
	defer func() {
		if errdefs.Is(err, errdefs.ErrDataLoss) && s.Damaged() != nil {
			s.abandon(bt)
		}
	}()
	defer s.catchDamage(&err, guardFault())
	if err := bt.Commit(); err != nil {
		return fmt.Errorf("commit to catalog store %s: %w", s.path, err)
	}
	return nil
}

// abandon rolls back a transaction bbolt panicked in.
func (s *Store) abandon(bt *bolt.Tx) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			s.damageMu.Lock()
			s.wedged = true
			s.damageMu.Unlock()
		}
	}()
	_ = bt.Rollback()
}

// undoOp restores one key (or drops one bucket) written by the current fn.
type undoOp struct {
	top []byte // top-level bucket
	sub []byte // bucket nested in top, or nil
	key []byte // nil: drop sub, which the fn created
	old []byte // the value before the write
	had bool   // whether key existed before the write
}

// logUndo records how to undo a write that is about to happen. old is
// copied: it may point into the memory map or into a node bbolt rewrites.
func (t *tx) logUndo(top, sub, key, old []byte, had bool) {
	if had {
		old = append(make([]byte, 0, len(old)), old...)
	}
	t.undo = append(t.undo, undoOp{top: top, sub: sub, key: key, old: old, had: had})
}

// rollback undoes the logged writes, newest first. It reports fnPoisoned if
// it could not, in which case the transaction must be abandoned.
func (t *tx) rollback() (res outcome) {
	defer func() {
		if recover() != nil {
			res = fnPoisoned
		}
	}()
	for i := len(t.undo) - 1; i >= 0; i-- {
		if t.undoOne(t.undo[i]) != nil {
			return fnPoisoned
		}
	}
	t.undo = nil
	return fnFailed
}

func (t *tx) undoOne(op undoOp) error {
	b := t.tx.Bucket(op.top)
	if b == nil {
		return fmt.Errorf("bucket %s is missing", op.top)
	}
	if op.sub != nil {
		if op.key == nil {
			return b.DeleteBucket(op.sub)
		}
		if b = b.Bucket(op.sub); b == nil {
			return fmt.Errorf("bucket %s/%s is missing", op.top, op.sub)
		}
	}
	if op.had {
		return b.Put(op.key, op.old)
	}
	return b.Delete(op.key)
}
