package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Backup writes a consistent copy of the whole file to w, from one read
// transaction: other processes keep reading and committing while it runs,
// and the copy is the state as of its start. It returns the bytes written.
func (s *Store) Backup(ctx context.Context, w io.Writer) (n int64, err error) {
	err = s.viewRaw(ctx, func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// BackupFile writes a consistent copy of the store to path (see Backup):
// to a temporary file beside it, synced, then renamed into place, so path
// never holds half a backup. It refuses an existing path unless overwrite.
// The copy is checked (meta pages and layout) before it gets its name.
func BackupFile(ctx context.Context, s interface {
	Backup(context.Context, io.Writer) (int64, error)
}, path string, overwrite bool) (int64, error) {
	if _, err := os.Lstat(path); err == nil && !overwrite {
		return 0, errdefs.WithHint(errdefs.ErrAlreadyExists, "choose another name, or pass --force to replace it",
			"%s already exists", path)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("create backup %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	n, err := s.Backup(ctx, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("write backup %s: %w", path, err)
	}
	if err := checkFile(tmp, DefaultTimeout); err != nil {
		return 0, fmt.Errorf("backup %s: the copy does not check out: %w", path, err)
	}
	if !overwrite {
		// Link, not rename: a file that appeared meanwhile is kept.
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return 0, errdefs.New(errdefs.ErrAlreadyExists, "%s already exists", path)
			}
			return 0, fmt.Errorf("backup %s: %w", path, err)
		}
	} else if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("backup %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return n, nil
}

// viewRaw runs fn in a bbolt read transaction, guarded like View.
func (s *Store) viewRaw(ctx context.Context, fn func(tx *bolt.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.Damaged(); err != nil {
		return err
	}
	defer s.catchDamage(&err, guardFault())
	t, err := s.db.Begin(false)
	if err != nil {
		return s.beginError(err)
	}
	defer func() { _ = t.Rollback() }()
	return fn(t)
}

// Backup writes a consistent copy of the file to w (see Store.Backup).
func (sh *Shared) Backup(ctx context.Context, w io.Writer) (n int64, err error) {
	err = sh.with(ctx, 0, func(s *Store) error {
		n, err = s.Backup(ctx, w)
		return err
	})
	return n, err
}
