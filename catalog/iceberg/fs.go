package iceberg

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"strings"
	"sync"
	"time"

	iceio "github.com/apache/iceberg-go/io"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// writeOnceFS is the file system every table operation goes through, over
// the warehouse Storage. It enforces the warehouse invariant that nothing is
// updated in place:
//
//   - Create and WriteFile refuse to overwrite an existing object, so a
//     metadata, manifest or data file, once written, never changes; an
//     object becomes visible only when its writer closes.
//   - Remove deletes only objects this instance created (the operation's
//     own unreferenced output, e.g. a manifest iceberg-go abandons, or the
//     files of a failed import). Any other location is left alone and
//     Remove reports success: another branch or commit may still
//     reference it.
//
// Locations are the URIs (or, for a local warehouse, absolute paths) that
// table metadata records; Storage.Key maps them to objects. A location
// outside the warehouse can be read only when it is a local path.
type writeOnceFS struct {
	ctx   context.Context
	store warehouse.Storage
	mu    sync.Mutex
	// created holds the keys this instance wrote.
	created map[string]struct{}
}

var (
	_ iceio.WriteFileIO = (*writeOnceFS)(nil)
	_ iceio.ReadFileIO  = (*writeOnceFS)(nil)
)

// newWriteOnceFS returns the file system of one operation; ctx bounds its
// requests to the store.
func newWriteOnceFS(ctx context.Context, store warehouse.Storage) *writeOnceFS {
	return &writeOnceFS{ctx: ctx, store: store, created: map[string]struct{}{}}
}

// localName turns a file:// location into a local path.
func localName(name string) string {
	switch {
	case strings.HasPrefix(name, "file://"):
		return strings.TrimPrefix(name, "file://")
	case strings.HasPrefix(name, "file:/"):
		return strings.TrimPrefix(name, "file:")
	}
	return name
}

// key returns the object of a location; local is set instead for a local
// path outside the warehouse (readable only).
func (w *writeOnceFS) key(name string) (key, local string, err error) {
	if w.store != nil {
		if k, ok := w.store.Key(name); ok {
			return k, "", nil
		}
	}
	if strings.Contains(name, "://") && !strings.HasPrefix(name, "file://") {
		return "", "", errdefs.New(errdefs.ErrInvalidArgument, "location %s is outside the warehouse %s", name, w.root())
	}
	return "", localName(name), nil
}

func (w *writeOnceFS) root() string {
	if w.store == nil {
		return "(none)"
	}
	return w.store.Root()
}

// pathError keeps the errors.Is(err, fs.ErrNotExist) iceberg-go and load
// rely on, and the class of err.
func pathError(op, name string, err error) error {
	if errdefs.Is(err, errdefs.ErrNotFound) {
		return &iofs.PathError{Op: op, Path: name, Err: errors.Join(iofs.ErrNotExist, err)}
	}
	return &iofs.PathError{Op: op, Path: name, Err: err}
}

func (w *writeOnceFS) Open(name string) (iceio.File, error) {
	key, local, err := w.key(name)
	if err != nil {
		return nil, err
	}
	if local != "" {
		return os.Open(local)
	}
	if lp, ok := w.store.(warehouse.LocalPather); ok {
		return os.Open(lp.LocalPath(key))
	}
	size, _, err := w.store.Stat(w.ctx, key)
	if err != nil {
		return nil, pathError("open", name, err)
	}
	return &objectFile{ctx: w.ctx, store: w.store, key: key, name: name, size: size}, nil
}

func (w *writeOnceFS) ReadFile(name string) ([]byte, error) {
	f, err := w.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (w *writeOnceFS) Create(name string) (iceio.FileWriter, error) {
	key, _, err := w.key(name)
	if err == nil && key == "" {
		err = errdefs.New(errdefs.ErrInvalidArgument, "location %s is outside the warehouse %s: tables write only there", name, w.root())
	}
	if err != nil {
		return nil, err
	}
	wr, err := w.store.Create(w.ctx, key)
	if err != nil {
		return nil, pathError("create", name, err)
	}
	return &objectWriter{Writer: wr, fs: w, key: key}, nil
}

func (w *writeOnceFS) WriteFile(name string, content []byte) (err error) {
	f, err := w.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.(*objectWriter).Abort()
		return err
	}
	return f.Close()
}

func (w *writeOnceFS) Remove(name string) error {
	key, _, err := w.key(name)
	if err != nil || key == "" {
		return nil
	}
	w.mu.Lock()
	_, mine := w.created[key]
	delete(w.created, key)
	w.mu.Unlock()
	if !mine {
		return nil
	}
	return w.store.Delete(w.ctx, key)
}

// removeCreated deletes every object this instance created. It cleans up
// after an operation that failed before anything referenced its output.
func (w *writeOnceFS) removeCreated() {
	w.mu.Lock()
	keys := make([]string, 0, len(w.created))
	for k := range w.created {
		keys = append(keys, k)
	}
	w.created = map[string]struct{}{}
	w.mu.Unlock()
	ctx := context.WithoutCancel(w.ctx) // also after a cancelled operation
	for _, k := range keys {
		_ = w.store.Delete(ctx, k)
	}
}

// objectWriter records its object as created once it is visible.
type objectWriter struct {
	warehouse.Writer
	fs  *writeOnceFS
	key string
}

func (o *objectWriter) Close() error {
	if err := o.Writer.Close(); err != nil {
		return err
	}
	o.fs.mu.Lock()
	o.fs.created[o.key] = struct{}{}
	o.fs.mu.Unlock()
	return nil
}

// objectFile reads an object of a remote warehouse: sequential reads
// stream from the current offset, ReadAt reads a range.
type objectFile struct {
	ctx   context.Context
	store warehouse.Storage
	key   string
	name  string
	size  int64
	off   int64
	body  io.ReadCloser
}

func (f *objectFile) Read(p []byte) (int, error) {
	if f.off >= f.size {
		return 0, io.EOF
	}
	if f.body == nil {
		rc, err := f.store.ReadRange(f.ctx, f.key, f.off, -1)
		if err != nil {
			return 0, err
		}
		f.body = rc
	}
	n, err := f.body.Read(p)
	f.off += int64(n)
	if err == io.EOF && f.off < f.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (f *objectFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if off+n > f.size {
		n = f.size - off
	}
	rc, err := f.store.ReadRange(f.ctx, f.key, off, n)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	got, err := io.ReadFull(rc, p[:n])
	if err == nil && got < len(p) {
		err = io.EOF
	}
	return got, err
}

func (f *objectFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.size
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek %s: negative offset", f.name)
	}
	if offset != f.off && f.body != nil {
		f.body.Close()
		f.body = nil
	}
	f.off = offset
	return offset, nil
}

func (f *objectFile) Close() error {
	if f.body != nil {
		return f.body.Close()
	}
	return nil
}

func (f *objectFile) Stat() (iofs.FileInfo, error) { return objectInfo{f}, nil }

type objectInfo struct{ f *objectFile }

func (i objectInfo) Name() string        { return i.f.key[strings.LastIndexByte(i.f.key, '/')+1:] }
func (i objectInfo) Size() int64         { return i.f.size }
func (i objectInfo) Mode() iofs.FileMode { return 0o444 }
func (i objectInfo) ModTime() time.Time  { return time.Time{} }
func (i objectInfo) IsDir() bool         { return false }
func (i objectInfo) Sys() any            { return nil }
