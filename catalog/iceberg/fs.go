package iceberg

import (
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	iceio "github.com/apache/iceberg-go/io"
)

// writeOnceFS is the file system every table operation goes through. It
// enforces the warehouse invariant that nothing is updated in place:
//
//   - Create and WriteFile refuse to overwrite an existing file (O_EXCL), so
//     a metadata, manifest or data file, once written, never changes.
//   - Remove deletes only files this instance created (the operation's own
//     unreferenced output, e.g. a manifest iceberg-go abandons, or the files
//     of a failed import). Any other path is left alone and Remove reports
//     success: another branch or commit may still reference it.
//
// Paths are local: plain absolute paths or file:// URIs.
type writeOnceFS struct {
	mu      sync.Mutex
	created map[string]struct{}
}

var (
	_ iceio.WriteFileIO = (*writeOnceFS)(nil)
	_ iceio.ReadFileIO  = (*writeOnceFS)(nil)
)

func newWriteOnceFS() *writeOnceFS {
	return &writeOnceFS{created: map[string]struct{}{}}
}

// localName turns a location iceberg-go hands us into a local path.
func localName(name string) string {
	switch {
	case strings.HasPrefix(name, "file://"):
		return strings.TrimPrefix(name, "file://")
	case strings.HasPrefix(name, "file:/"):
		return strings.TrimPrefix(name, "file:")
	}
	return name
}

func (w *writeOnceFS) Open(name string) (iceio.File, error) {
	return os.Open(localName(name))
}

func (w *writeOnceFS) ReadFile(name string) ([]byte, error) {
	return os.ReadFile(localName(name))
}

func (w *writeOnceFS) Create(name string) (iceio.FileWriter, error) {
	p := localName(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	w.track(p)
	return f, nil
}

func (w *writeOnceFS) WriteFile(name string, content []byte) (err error) {
	f, err := w.Create(name)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = f.Write(content)
	return err
}

func (w *writeOnceFS) Remove(name string) error {
	p := localName(name)
	w.mu.Lock()
	_, mine := w.created[p]
	delete(w.created, p)
	w.mu.Unlock()
	if !mine {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	return nil
}

func (w *writeOnceFS) track(p string) {
	w.mu.Lock()
	w.created[p] = struct{}{}
	w.mu.Unlock()
}

// removeCreated deletes every file this instance created, except keep. It
// cleans up after an operation that failed before anything referenced its
// output.
func (w *writeOnceFS) removeCreated(keep map[string]bool) {
	w.mu.Lock()
	paths := make([]string, 0, len(w.created))
	for p := range w.created {
		if !keep[p] {
			paths = append(paths, p)
		}
	}
	w.mu.Unlock()
	for _, p := range paths {
		_ = w.Remove(p)
	}
}
