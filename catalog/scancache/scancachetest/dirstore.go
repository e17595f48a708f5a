package scancachetest

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/zeebo/xxh3"
)

// DirStore keeps objects as the files of a directory; the ETag is a hash
// of the content, as S3's is for single-part uploads.
type DirStore struct{ Dir string }

var _ Store = DirStore{}

// Stat implements scancache.Source.
func (s DirStore) Stat(ctx context.Context, key string) (int64, string, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, key))
	if err != nil {
		return 0, "", err
	}
	return int64(len(b)), strconv.FormatUint(xxh3.Hash(b), 16), nil
}

// ReadRange implements scancache.Source.
func (s DirStore) ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(s.Dir, key))
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, n), f}, nil
}

// Put writes the object at key (a new file renamed into place).
func (s DirStore) Put(ctx context.Context, key string, data []byte) error {
	path := filepath.Join(s.Dir, key)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
