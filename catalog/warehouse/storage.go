package warehouse

import (
	"context"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// ObjectInfo describes one object of a warehouse.
type ObjectInfo struct {
	// Key is relative to the warehouse root ("ns/t-uuid/data/x.parquet").
	Key  string
	Size int64
	// ETag changes whenever the object's content does (S3's ETag; for a
	// local file its size and modification time).
	ETag    string
	ModTime time.Time
}

// Storage is a warehouse: objects under one root, addressed by keys
// relative to it. Objects are written once and never updated in place.
// Implementations are safe for concurrent use.
//
// Errors: ErrNotFound for a key that does not exist, ErrAlreadyExists when
// Create meets an existing object, ErrUnavailable when the store cannot be
// reached (a retry later may succeed), ErrPermissionDenied when the
// credentials do not allow the operation.
type Storage interface {
	// Stat returns the size and ETag of an object.
	Stat(ctx context.Context, key string) (size int64, etag string, err error)
	// ReadRange reads n bytes at off (n < 0: to the end).
	ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// List calls fn for every object whose key starts with prefix, in
	// key order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// Create starts writing a new object. Nothing is visible under key
	// until the Writer's Close succeeds; Abort (or a crash) leaves
	// nothing visible. Close fails with ErrAlreadyExists if key exists.
	Create(ctx context.Context, key string) (Writer, error)

	// Root is the URI of the warehouse as given (file:///path or
	// s3://bucket/prefix).
	Root() string
	// URI is the location recorded in table metadata for key.
	URI(key string) string
	// Key returns the key of a location recorded in table metadata; ok
	// is false for a location outside the warehouse.
	Key(uri string) (key string, ok bool)
}

// Writer writes one new object.
type Writer interface {
	io.Writer
	io.ReaderFrom
	// Close makes the object visible.
	Close() error
	// Abort discards what was written. Safe after Close (then a no-op).
	Abort() error
}

// LocalPather is implemented by a Storage whose objects are local files:
// scans read them in place.
type LocalPather interface {
	LocalPath(key string) string
}

// Location is a parsed warehouse URI.
type Location struct {
	// Scheme is "file" or "s3".
	Scheme string
	// Bucket is the S3 bucket ("" for file).
	Bucket string
	// Path is the absolute directory (file) or the key prefix without
	// leading or trailing slash (s3, possibly "").
	Path string
}

// String is the canonical URI.
func (l Location) String() string {
	if l.Scheme == "s3" {
		if l.Path == "" {
			return "s3://" + l.Bucket
		}
		return "s3://" + l.Bucket + "/" + l.Path
	}
	return "file://" + l.Path
}

// ParseLocation parses a warehouse URI: file:///abs/path, an absolute
// path, or s3://bucket[/prefix]. Returns ErrInvalidArgument otherwise.
func ParseLocation(s string) (Location, error) {
	hint := "use file:///absolute/path or s3://bucket/prefix"
	if strings.HasPrefix(s, "/") {
		s = "file://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "invalid warehouse %q: %v", s, err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Location{}, errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "invalid warehouse %q: no query, fragment or user info allowed", s)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Location{}, errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "invalid warehouse %q: a file URI names no host (three slashes: file:///path)", s)
		}
		if !filepath.IsAbs(u.Path) {
			return Location{}, errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "invalid warehouse %q: the path is not absolute", s)
		}
		p := filepath.Clean(u.Path)
		if (&url.URL{Path: p}).String() != p {
			return Location{}, errdefs.New(errdefs.ErrInvalidArgument,
				"invalid warehouse %q: the path contains characters not allowed in table locations (spaces, %%, #, ?)", s)
		}
		return Location{Scheme: "file", Path: p}, nil
	case "s3":
		if u.Host == "" {
			return Location{}, errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "invalid warehouse %q: no bucket", s)
		}
		prefix := strings.Trim(path.Clean("/"+u.Path), "/")
		if (&url.URL{Path: prefix}).String() != prefix {
			return Location{}, errdefs.New(errdefs.ErrInvalidArgument,
				"invalid warehouse %q: the prefix contains characters not allowed in table locations (spaces, %%, #, ?)", s)
		}
		return Location{Scheme: "s3", Bucket: u.Host, Path: prefix}, nil
	}
	return Location{}, errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "invalid warehouse %q: unknown scheme %q", s, u.Scheme)
}

// checkKey refuses keys that would leave the root.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || key == ".." || strings.HasPrefix(key, "../") {
		return errdefs.New(errdefs.ErrInvalidArgument, "warehouse key %q is not a clean relative path", key)
	}
	return nil
}

// keyUnder returns the key of uri under root (a URI or plain path without
// trailing slash).
func keyUnder(root, uri string) (string, bool) {
	if !strings.HasPrefix(uri, root+"/") {
		return "", false
	}
	k := uri[len(root)+1:]
	if checkKey(k) != nil {
		return "", false
	}
	return k, true
}
