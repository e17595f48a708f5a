package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Local is a warehouse in a local directory. Keys are slash-separated
// paths under Dir.
//
// Locations in table metadata are plain absolute paths under LocationRoot,
// which is Dir unless the warehouse moved since its tables were written (a
// moved data directory): then locations under the old root still name the
// files under Dir.
type Local struct {
	dir     string
	locRoot string
}

var (
	_ Storage     = (*Local)(nil)
	_ LocalPather = (*Local)(nil)
)

// NewLocal returns the warehouse in dir (an absolute path, created if
// missing) whose metadata locations start with locRoot ("" means dir).
func NewLocal(dir, locRoot string) (*Local, error) {
	if !filepath.IsAbs(dir) {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "warehouse %q is not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	if locRoot == "" {
		locRoot = dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating warehouse: %w", err)
	}
	return &Local{dir: dir, locRoot: filepath.Clean(locRoot)}, nil
}

// Dir is the directory of the warehouse.
func (l *Local) Dir() string { return l.dir }

func (l *Local) Root() string { return "file://" + l.dir }

// URI returns the absolute path of key under the location root.
func (l *Local) URI(key string) string { return l.locRoot + "/" + key }

// Key accepts plain paths and file:// URIs under the location root or the
// directory.
func (l *Local) Key(uri string) (string, bool) {
	p := localPath(uri)
	if k, ok := keyUnder(l.locRoot, p); ok {
		return k, true
	}
	return keyUnder(l.dir, p)
}

// localPath turns a file:// URI into a path.
func localPath(uri string) string {
	switch {
	case strings.HasPrefix(uri, "file://"):
		return strings.TrimPrefix(uri, "file://")
	case strings.HasPrefix(uri, "file:/"):
		return strings.TrimPrefix(uri, "file:")
	}
	return uri
}

// LocalPath is the file of key.
func (l *Local) LocalPath(key string) string { return filepath.Join(l.dir, filepath.FromSlash(key)) }

func (l *Local) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return l.LocalPath(key), nil
}

// localErr classifies a file system error.
func localErr(op, key string, err error) error {
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return fmt.Errorf("%s %s: %w: %w", op, key, errdefs.ErrNotFound, err)
	case errors.Is(err, iofs.ErrExist):
		return fmt.Errorf("%s %s: %w: %w", op, key, errdefs.ErrAlreadyExists, err)
	case errors.Is(err, iofs.ErrPermission):
		return fmt.Errorf("%s %s: %w: %w", op, key, errdefs.ErrPermissionDenied, err)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

func localETag(info iofs.FileInfo) string {
	return fmt.Sprintf("%x-%x", info.Size(), info.ModTime().UnixNano())
}

func (l *Local) Stat(_ context.Context, key string) (int64, string, error) {
	p, err := l.path(key)
	if err != nil {
		return 0, "", err
	}
	info, err := os.Stat(p)
	if err != nil {
		return 0, "", localErr("stat", key, err)
	}
	if !info.Mode().IsRegular() {
		return 0, "", errdefs.New(errdefs.ErrNotFound, "stat %s: not a file", key)
	}
	return info.Size(), localETag(info), nil
}

func (l *Local) ReadRange(_ context.Context, key string, off, n int64) (io.ReadCloser, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, localErr("read", key, err)
	}
	if n < 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, localErr("read", key, err)
		}
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, n), f}, nil
}

func (l *Local) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	var infos []ObjectInfo
	err := filepath.WalkDir(l.dir, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(l.dir, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// Skip directories that cannot hold a key with the prefix.
			if key != "." && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) || isTemp(key) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		infos = append(infos, ObjectInfo{Key: key, Size: info.Size(), ETag: localETag(info), ModTime: info.ModTime()})
		return nil
	})
	if err != nil {
		return localErr("list", prefix, err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, o := range infos {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (l *Local) Delete(_ context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return localErr("delete", key, err)
	}
	return nil
}

// tempMarker is in the names of files being written; List skips them.
const tempMarker = ".lakehouse-tmp-"

func isTemp(key string) bool { return strings.Contains(key, tempMarker) }

// Create writes to a temporary file beside the object and links it to its
// name on Close, which fails if the name exists.
func (l *Local) Create(_ context.Context, key string) (Writer, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, localErr("create", key, err)
	}
	if _, err := os.Lstat(p); err == nil {
		return nil, errdefs.New(errdefs.ErrAlreadyExists, "create %s: the object exists", key)
	}
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+tempMarker+uuid.NewString())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, localErr("create", key, err)
	}
	return &localWriter{f: f, tmp: tmp, dst: p, key: key}, nil
}

type localWriter struct {
	f        *os.File
	tmp, dst string
	key      string
	done     bool
}

func (w *localWriter) Write(b []byte) (int, error)         { return w.f.Write(b) }
func (w *localWriter) ReadFrom(r io.Reader) (int64, error) { return w.f.ReadFrom(r) }

func (w *localWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	defer os.Remove(w.tmp)
	if err := w.f.Close(); err != nil {
		return localErr("write", w.key, err)
	}
	if err := os.Link(w.tmp, w.dst); err != nil {
		return localErr("create", w.key, err)
	}
	return nil
}

func (w *localWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.tmp)
}
