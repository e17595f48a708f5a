package bolt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"

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
	// batches and batched count the batches and their Updates.
	batches, batched atomic.Int64

	// Set when a fault or a bbolt panic showed the file damaged (see
	// damage.go); wedged when bbolt may still hold its write lock, so
	// Close must not wait for it.
	damageMu sync.Mutex
	damaged  error
	wedged   bool
}

var _ catalog.Store = (*Store)(nil)

// Open opens the store file at path, creating it (and its layout) if it does
// not exist, and migrating its layout if it is older than this binary.
//
// It returns an error wrapping errdefs.ErrUnavailable if another process
// holds the file for longer than opts.Timeout, errdefs.ErrDataLoss if the
// file is damaged or is not a lakehouse catalog (see damage.go),
// errdefs.ErrFailedPrecondition if it has a newer format version, and
// errdefs.ErrInvalidArgument if opts are invalid.
func Open(path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "catalog store: path is empty")
	}
	opts = opts.withDefaults()
	if !opts.ReadOnly {
		if err := createIfMissing(path, opts); err != nil {
			return nil, err
		}
	}
	if err := checkFile(path, opts.Timeout); err != nil {
		if errdefs.Class(err) == errdefs.ErrInternal {
			return nil, openError(path, opts, err)
		}
		return nil, err
	}
	s := &Store{path: path, readOnly: opts.ReadOnly, quit: make(chan struct{})}
	if err := s.open(opts); err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		s.requests = make(chan *request)
		s.loopDone = make(chan struct{})
		go s.commitLoop()
	}
	return s, nil
}

// open opens the checked file with bbolt, then checks and migrates its
// layout. A fault or panic in bbolt is a damaged file; the file may then
// stay open until the process ends (bbolt cannot be closed halfway).
func (s *Store) open(opts Options) (err error) {
	defer func() {
		if err != nil && s.db != nil {
			closeQuietly(s.db)
		}
	}()
	defer s.catchDamage(&err, guardFault())
	db, err := bolt.Open(s.path, 0o600, boltOptions(opts))
	if err != nil {
		return openError(s.path, opts, err)
	}
	s.db = db
	// A file already at this version needs no write transaction (whose
	// commit would cost a sync on every Open).
	current := false
	err = db.View(func(tx *bolt.Tx) error {
		v, err := readVersion(s.path, tx)
		if err != nil {
			return err
		}
		if v == 0 {
			// create writes the layout before the file gets its name, so
			// an existing file without one is damaged, not new.
			return damagedError(s.path, "it has no lakehouse layout (no meta/version)")
		}
		current = v == currentVersion
		if opts.ReadOnly || current {
			if err := checkVersion(s.path, tx); err != nil {
				return err
			}
			return checkLayout(s.path, tx)
		}
		return nil
	})
	if err == nil && !opts.ReadOnly && !current {
		err = db.Update(func(tx *bolt.Tx) error { return migrate(s.path, tx) })
	}
	return err
}

// closeQuietly closes db after a failed open. bbolt's own View and Update
// release their locks even when they panic, so this does not hang.
func closeQuietly(db *bolt.DB) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { _ = recover() }()
	_ = db.Close()
}

// boltOptions are the bbolt options of every open.
func boltOptions(opts Options) *bolt.Options {
	return &bolt.Options{
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
	}
}

// createIfMissing creates the store file at path if there is none. The new
// file gets its layout under a temporary name and is then linked into
// place, so no file of that name is ever empty or half made, and a file
// that exists is never re-initialized (bbolt would turn an empty file into
// an empty database).
func createIfMissing(path string, opts Options) error {
	if _, err := os.Lstat(path); !isNotExist(err) {
		return nil // it exists (or cannot be looked at; checkFile says why)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.new")
	if err != nil {
		return openError(path, opts, err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, boltOptions(opts))
	if err != nil {
		return openError(path, opts, err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return migrate(path, tx) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create catalog store %s: %w", path, err)
	}
	// Link fails if another process created the file meanwhile; then
	// theirs is the catalog.
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create catalog store %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// openError turns an error of bolt.Open into one of the errdefs classes.
func openError(path string, opts Options, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return lockedError(path, opts.Timeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return damagedError(path, "%v", err)
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
	s.damageMu.Lock()
	wedged := s.wedged
	s.damageMu.Unlock()
	if wedged {
		return nil // bbolt's locks are in an unknown state; the file closes with the process
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close catalog store %s: %w", s.path, err)
	}
	return nil
}

// View runs fn in a read-only transaction on a consistent snapshot. It
// returns ctx.Err() without calling fn if ctx is done.
func (s *Store) View(ctx context.Context, fn func(tx catalog.Tx) error) error {
	return s.viewRaw(ctx, func(t *bolt.Tx) error { return fn(&tx{tx: t}) })
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
