package bolt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// initialMmapSize is the address space mapped at Open. A write transaction
// that grows the file beyond the mapping remaps it, and a remap waits for
// every open read transaction; mapping 64 MiB up front keeps View and Update
// from waiting on each other until the catalog is that large. It costs
// address space, not memory.
const initialMmapSize = 64 << 20

// Store is a catalog.Store in a bbolt file. It is safe for concurrent use.
type Store struct {
	db       *bolt.DB
	path     string
	readOnly bool

	// Group commit (see commit.go); nil channels when read-only.
	requests  chan *request
	quit      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
}

var _ catalog.Store = (*Store)(nil)

// Open opens the store file at path, creating it (and its layout) if it does
// not exist, and migrating its layout if it is older than this binary.
//
// It returns an error wrapping errdefs.ErrUnavailable if another process
// holds the file for longer than opts.Timeout, errdefs.ErrFailedPrecondition
// if the file is not a lakehouse store or has a newer format version, and
// errdefs.ErrInvalidArgument if opts are invalid.
func Open(path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "catalog store: path is empty")
	}
	opts = opts.withDefaults()
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		// bbolt waits forever by default; a second lakehouse process must
		// fail with a message instead of hanging.
		Timeout:  opts.Timeout,
		NoSync:   opts.NoSync,
		ReadOnly: opts.ReadOnly,
		// The hash-map freelist allocates in constant time however
		// fragmented the file gets; the default array freelist slows
		// down as it grows (etcd uses the map freelist for this reason).
		FreelistType: bolt.FreelistMapType,
		// See initialMmapSize.
		InitialMmapSize: initialMmapSize,
	})
	if err != nil {
		return nil, openError(path, opts, err)
	}
	// A file already at this version needs no write transaction (whose
	// commit would cost a sync on every Open).
	current := false
	err = db.View(func(tx *bolt.Tx) error {
		v, err := readVersion(path, tx)
		current = err == nil && v == currentVersion
		if opts.ReadOnly || current {
			return checkVersion(path, tx)
		}
		return nil
	})
	if err == nil && !opts.ReadOnly && !current {
		err = db.Update(func(tx *bolt.Tx) error { return migrate(path, tx) })
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s := &Store{db: db, path: path, readOnly: opts.ReadOnly, quit: make(chan struct{})}
	if !opts.ReadOnly {
		s.requests = make(chan *request)
		s.loopDone = make(chan struct{})
		go s.commitLoop()
	}
	return s, nil
}

// openError turns an error of bolt.Open into one of the errdefs classes.
func openError(path string, opts Options, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return errdefs.WithHint(errdefs.ErrUnavailable,
			"wait for it to finish, or use another --data-dir",
			"the data directory is in use by another lakehouse process (%s stayed locked for %s)", path, opts.Timeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"check that --data-dir points at a lakehouse data directory",
			"%s is not a lakehouse catalog file, or it is damaged: %v", path, err)
	case errors.Is(err, fs.ErrNotExist):
		return errdefs.New(errdefs.ErrNotFound, "catalog store %s does not exist", path)
	case errors.Is(err, fs.ErrPermission):
		return errdefs.New(errdefs.ErrPermissionDenied, "open catalog store: %v", err)
	default:
		return fmt.Errorf("open catalog store %s: %w", path, err)
	}
}

// Path returns the path of the store file.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock, waiting for running transactions to
// finish. Closing a closed store returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		if s.loopDone != nil {
			<-s.loopDone
		}
	})
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close catalog store %s: %w", s.path, err)
	}
	return nil
}

// View runs fn in a read-only transaction on a consistent snapshot. It
// returns ctx.Err() without calling fn if ctx is done.
func (s *Store) View(ctx context.Context, fn func(tx catalog.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := s.db.Begin(false)
	if err != nil {
		return s.beginError(err)
	}
	defer func() { _ = t.Rollback() }()
	return fn(&tx{tx: t})
}

func (s *Store) beginError(err error) error {
	switch {
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return s.closedError()
	case errors.Is(err, berrors.ErrDatabaseReadOnly):
		return errdefs.New(errdefs.ErrFailedPrecondition, "catalog store %s is open read-only", s.path)
	default:
		return fmt.Errorf("catalog store %s: %w", s.path, err)
	}
}

func (s *Store) closedError() error {
	return errdefs.New(errdefs.ErrFailedPrecondition, "catalog store %s is closed", s.path)
}
