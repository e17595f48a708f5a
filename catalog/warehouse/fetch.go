package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Downloader gives scans a local copy of an object: the object itself for
// a local warehouse, else a whole-object download under Dir, named by key
// and ETag so that a replaced object is never served stale. It implements
// the iceberg package's Fetcher.
type Downloader struct {
	Storage Storage
	// Dir holds the downloads (<data-dir>/cache/objects).
	Dir string
}

// Materialize returns a local file with the content of key. columns is a
// hint this implementation ignores: it downloads the whole object.
func (d *Downloader) Materialize(ctx context.Context, key string, _ []string) (string, error) {
	if lp, ok := d.Storage.(LocalPather); ok {
		return lp.LocalPath(key), nil
	}
	size, etag, err := d.Storage.Stat(ctx, key)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(d.Storage.URI(key) + "\x00" + etag))
	name := hex.EncodeToString(sum[:16]) + filepath.Ext(key)
	dst := filepath.Join(d.Dir, name[:2], name)
	if info, err := os.Stat(dst); err == nil && info.Size() == size {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("scan cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".download-*")
	if err != nil {
		return "", fmt.Errorf("scan cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	rc, err := d.Storage.ReadRange(ctx, key, 0, -1)
	if err != nil {
		tmp.Close()
		return "", err
	}
	n, err := io.Copy(tmp, rc)
	rc.Close()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", d.Storage.URI(key), err)
	}
	if n != size {
		return "", errdefs.WithHint(errdefs.ErrConflict, "try again",
			"downloading %s: got %d bytes, expected %d (the object changed)", d.Storage.URI(key), n, size)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("scan cache: %w", err)
	}
	return dst, nil
}
