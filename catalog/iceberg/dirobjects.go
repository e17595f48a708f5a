package iceberg

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// DirObjects is a local warehouse directory as catalog.Objects: keys are
// paths relative to Root with '/' separators. Directories are not objects;
// Delete leaves them, and RemoveEmptyDirs removes those deletes emptied.
type DirObjects struct {
	Root string
}

var (
	_ catalog.Objects   = (*DirObjects)(nil)
	_ catalog.EmptyDirs = (*DirObjects)(nil)
)

// List implements catalog.Objects, in lexical order of the path names.
// The ETag of a file is its size and modification time, which change
// whenever its content does (files here are written once).
func (d *DirObjects) List(ctx context.Context, prefix string, fn func(catalog.ObjectInfo) error) error {
	err := filepath.WalkDir(d.Root, func(p string, de iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) && p != d.Root {
				return nil // removed while listed
			}
			return err
		}
		if p == d.Root {
			return nil
		}
		key := filepath.ToSlash(strings.TrimPrefix(p, d.Root+string(filepath.Separator)))
		if de.IsDir() {
			// Skip a folder no key under the prefix can be in.
			if !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		st, err := de.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(catalog.ObjectInfo{Key: key, Size: st.Size(), ModTime: st.ModTime(),
			ETag: fmt.Sprintf("%x-%x", st.Size(), st.ModTime().UnixNano())})
	})
	if errors.Is(err, iofs.ErrNotExist) {
		return nil // no warehouse yet: no files
	}
	return err
}

// Delete implements catalog.Objects.
func (d *DirObjects) Delete(_ context.Context, key string) error {
	clean := path.Clean("/" + key)
	if key == "" || clean != "/"+key {
		return errdefs.New(errdefs.ErrInvalidArgument, "object key %q is not a clean relative path", key)
	}
	err := os.Remove(filepath.Join(d.Root, filepath.FromSlash(key)))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	return err
}

// RemoveEmptyDirs implements catalog.EmptyDirs. It removes, deepest
// first, the empty folders under Root (never Root itself) that hold keys,
// that it emptied, or that nothing changed since before; keep vetoes.
func (d *DirObjects) RemoveEmptyDirs(ctx context.Context, keys []string, before time.Time, keep func(dir string) bool) ([]string, error) {
	eligible := map[string]bool{}
	for _, k := range keys {
		eligible[path.Dir(k)] = true
	}
	var dirs []string
	err := filepath.WalkDir(d.Root, func(p string, de iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !de.IsDir() || p == d.Root {
			return nil
		}
		key := filepath.ToSlash(strings.TrimPrefix(p, d.Root+string(filepath.Separator)))
		if keep(key) {
			return filepath.SkipDir
		}
		dirs = append(dirs, key)
		if st, err := de.Info(); err == nil && st.ModTime().Before(before) {
			eligible[key] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the folders of the warehouse: %w", err)
	}
	slices.SortFunc(dirs, func(a, b string) int {
		if da, db := strings.Count(a, "/"), strings.Count(b, "/"); da != db {
			return db - da
		}
		return strings.Compare(a, b)
	})
	var removed []string
	var errs []error
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if !eligible[dir] {
			continue
		}
		err := syscall.Rmdir(filepath.Join(d.Root, filepath.FromSlash(dir)))
		switch {
		case err == nil:
			removed = append(removed, dir)
			eligible[path.Dir(dir)] = true // emptied by us
		case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST), errors.Is(err, iofs.ErrNotExist):
		default:
			errs = append(errs, fmt.Errorf("removing the empty folder %s: %w", dir, err))
		}
	}
	return removed, errors.Join(errs...)
}
