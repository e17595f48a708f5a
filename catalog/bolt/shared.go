package bolt

import (
	"context"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Shared is a catalog.Store that holds the bbolt file only while
// transactions run: the first transaction opens it (waiting up to
// Options.Timeout for another process's transaction to end), later ones
// that overlap it share it, and the last one to end closes it. Several
// lakehouse processes can then use one data directory at once — a long
// `lakehouse run` does not keep `lakehouse query` or `branch ls` out —
// for the cost of an Open per transaction that finds the file closed
// (well under a millisecond once the file is in the page cache).
//
// The catalog's writes stay correct across processes because a commit
// checks, inside its write transaction, that the branch is still where
// the change was computed from (see catalog.Local).
type Shared struct {
	path string
	opts Options

	mu     sync.Mutex
	s      *Store
	refs   int
	closed bool
	// damaged is the error of a Store that found the file damaged
	// mid-transaction; every later transaction returns it.
	damaged error
}

var _ catalog.Store = (*Shared)(nil)

// OpenShared checks that the store at path opens (creating and migrating
// it as Open does) and returns it closed, to be opened by each
// transaction.
func OpenShared(path string, opts Options) (*Shared, error) {
	s, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	return &Shared{path: path, opts: opts}, nil
}

func (sh *Shared) acquire() (*Store, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return nil, errdefs.New(errdefs.ErrFailedPrecondition, "catalog store %s is closed", sh.path)
	}
	if sh.damaged != nil {
		return nil, sh.damaged
	}
	if sh.s == nil {
		s, err := Open(sh.path, sh.opts)
		if err != nil {
			return nil, err
		}
		sh.s = s
	}
	sh.refs++
	return sh.s, nil
}

func (sh *Shared) release() error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.refs--; sh.refs > 0 {
		return nil
	}
	s := sh.s
	sh.s = nil
	if err := s.Damaged(); err != nil {
		sh.damaged = err
	}
	return s.Close()
}

// View runs fn in a read-only transaction (see Store.View).
func (sh *Shared) View(ctx context.Context, fn func(tx catalog.Tx) error) error {
	return sh.with(ctx, 0, func(s *Store) error { return s.View(ctx, fn) })
}

// Update runs fn in a read-write transaction (see Store.Update). It is
// durable once Update returns. A write often ends long work (a run's
// merge), so while ctx lasts Update waits for the file up to
// updatePatience lock timeouts before it gives up as unavailable.
func (sh *Shared) Update(ctx context.Context, fn func(tx catalog.Tx) error) error {
	return sh.with(ctx, updatePatience*sh.opts.withDefaults().Timeout, func(s *Store) error { return s.Update(ctx, fn) })
}

// updatePatience is how many lock timeouts an Update waits in all.
const updatePatience = 10

// with runs one transaction on the open file, opening it if need be and
// trying again for up to patience while another process holds it.
func (sh *Shared) with(ctx context.Context, patience time.Duration, run func(s *Store) error) (err error) {
	deadline := time.Now().Add(patience)
	var s *Store
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, err = sh.acquire()
		if err == nil {
			break
		}
		if !errdefs.Is(err, errdefs.ErrUnavailable) || time.Now().After(deadline) {
			return err
		}
	}
	// Released even if fn panics (a recovered panic must not keep the
	// file locked for the rest of the process).
	defer func() {
		if cerr := sh.release(); err == nil {
			err = cerr
		}
	}()
	return run(s)
}

// Close makes further transactions fail. It does not wait for running
// ones; the file closes when the last ends.
func (sh *Shared) Close() error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.closed = true
	return nil
}
