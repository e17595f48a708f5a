// Package memstore is an in-memory catalog.Store with the semantics of the
// on-disk one (catalog/bolt), for tests and for throw-away catalogs.
//
// An Update writes into an overlay over the committed state and applies it
// only when fn returns nil, so a failed Update leaves nothing behind. Updates
// hold the write lock of an RWMutex and Views the read lock: Updates are
// serialized and a View sees the state before or after an Update, never
// during one. Stored commits and trees are deep copies, so callers cannot
// change stored state through their values.
package memstore

import (
	"context"
	"sync"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Store is an in-memory catalog.Store. It is safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	closed bool
	st     state
}

var _ catalog.Store = (*Store)(nil)

// state is the committed content of a Store.
type state struct {
	refs    map[catalog.RefKind]map[string]catalog.CommitID
	commits map[catalog.CommitID]*catalog.Commit
	trees   map[catalog.TreeID]*catalog.Tree
	records map[string]map[string][]byte // kind → key → value
}

// New returns an empty store.
func New() *Store {
	return &Store{st: state{
		refs: map[catalog.RefKind]map[string]catalog.CommitID{
			catalog.KindBranch: {},
			catalog.KindTag:    {},
		},
		commits: map[catalog.CommitID]*catalog.Commit{},
		trees:   map[catalog.TreeID]*catalog.Tree{},
		records: map[string]map[string][]byte{},
	}}
}

// View runs fn with the read lock held. It returns ctx.Err() without calling
// fn if ctx is done.
func (s *Store) View(ctx context.Context, fn func(tx catalog.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(ctx); err != nil {
		return err
	}
	return fn(&tx{base: &s.st})
}

// Update runs fn with the write lock held and applies its writes if it
// returns nil. A panic in fn leaves the store unchanged.
func (s *Store) Update(ctx context.Context, fn func(tx catalog.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(ctx); err != nil {
		return err
	}
	t := &tx{base: &s.st, ov: newOverlay()}
	if err := fn(t); err != nil {
		return err
	}
	t.ov.applyTo(&s.st)
	return nil
}

// usable checks, with the lock held, that the store is open and that ctx was
// not cancelled while this call waited for the lock.
func (s *Store) usable(ctx context.Context) error {
	if s.closed {
		return errdefs.New(errdefs.ErrFailedPrecondition, "catalog store (in memory) is closed")
	}
	return ctx.Err()
}

// Close drops the content. Further View and Update calls fail with
// errdefs.ErrFailedPrecondition; closing again returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.st = state{}
	return nil
}
