package scancache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"golang.org/x/sys/unix"
)

// DefaultMaxBytes is the size bound Open uses for maxBytes 0: 10 GiB.
const DefaultMaxBytes int64 = 10 << 30

// Source reads the objects of a warehouse. The warehouse storage satisfies
// it by its method set.
type Source interface {
	// Stat returns the size and ETag of the object at key. The ETag
	// changes whenever the object's content does.
	Stat(ctx context.Context, key string) (size int64, etag string, err error)
	// ReadRange reads n bytes of the object at key from offset off. A
	// reader that ends early means the object is shorter than Stat said.
	ReadRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
}

// FetchStats tell what one Materialize read from its source.
type FetchStats struct {
	// Hit is true when every byte the scan needs was already cached.
	Hit bool `json:"hit"`
	// BytesFetched is the number of bytes read from the source.
	BytesFetched int64 `json:"bytes_fetched"`
	// Requests is the number of range requests made.
	Requests int `json:"requests"`
	// BytesCached is the number of needed bytes served from the cache.
	BytesCached int64 `json:"bytes_cached"`
	// BytesRefetched is the part of BytesFetched that was cached but failed
	// its checksum (a damaged cache file) and was fetched again.
	BytesRefetched int64 `json:"bytes_refetched"`
	// MissingColumns are the requested columns the file does not have
	// (added to the table after it was written, or misnamed); nothing was
	// fetched for them.
	MissingColumns []string `json:"missing_columns,omitempty"`
	// RowGroups is the number of row groups of the file, RowGroupsPruned
	// how many of them Scan.RowGroups ruled out (nothing was fetched for
	// them).
	RowGroups       int `json:"row_groups"`
	RowGroupsPruned int `json:"row_groups_pruned,omitempty"`
	// PlanOnly is set for a Scan.PlanOnly call: Hit, BytesToFetch and
	// RequestsToFetch say what the scan would fetch; BytesFetched is what
	// was read to learn it (footers).
	PlanOnly        bool  `json:"plan_only,omitempty"`
	BytesToFetch    int64 `json:"bytes_to_fetch,omitempty"`
	RequestsToFetch int   `json:"requests_to_fetch,omitempty"`
}

// Add accumulates o into s, for a scan of several files: start from
// FetchStats{Hit: true}; Hit stays true only while every file is a hit.
func (s *FetchStats) Add(o FetchStats) {
	s.Hit = s.Hit && o.Hit
	s.BytesFetched += o.BytesFetched
	s.Requests += o.Requests
	s.BytesCached += o.BytesCached
	s.BytesRefetched += o.BytesRefetched
	s.MissingColumns = append(s.MissingColumns, o.MissingColumns...)
	s.RowGroups += o.RowGroups
	s.RowGroupsPruned += o.RowGroupsPruned
	s.PlanOnly = s.PlanOnly || o.PlanOnly
	s.BytesToFetch += o.BytesToFetch
	s.RequestsToFetch += o.RequestsToFetch
}

// String is the stats as one line, for EXPLAIN-style output: "hit, 19.7 MB
// cached", "miss, fetched 3.9 MB in 8 requests, 19.7 MB cached", or for a
// plan "miss, would fetch 3.9 MB in 8 requests, 19.7 MB cached"; with
// ", 18 of 20 row groups pruned" when some were.
func (s FetchStats) String() string {
	var b strings.Builder
	switch {
	case s.Hit:
		b.WriteString("hit")
	case s.PlanOnly:
		fmt.Fprintf(&b, "miss, would fetch %s in %d requests", megabytes(s.BytesToFetch), s.RequestsToFetch)
	default:
		fmt.Fprintf(&b, "miss, fetched %s in %d requests", megabytes(s.BytesFetched), s.Requests)
		if s.BytesRefetched > 0 {
			fmt.Fprintf(&b, " (%s refetched after a failed checksum)", megabytes(s.BytesRefetched))
		}
	}
	fmt.Fprintf(&b, ", %s cached", megabytes(s.BytesCached))
	if s.RowGroupsPruned > 0 {
		fmt.Fprintf(&b, ", %d of %d row groups pruned", s.RowGroupsPruned, s.RowGroups)
	}
	if len(s.MissingColumns) > 0 {
		fmt.Fprintf(&b, ", not in the file: %s", strings.Join(s.MissingColumns, ", "))
	}
	return b.String()
}

func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// Cache is a scan cache in one directory. It is safe for concurrent use by
// goroutines and by processes sharing the directory.
type Cache struct {
	dir      string
	maxBytes int64
	// keepRecent: entries used this recently are not evicted (KeepRecent).
	keepRecent time.Duration

	mu   sync.Mutex
	pins map[string]*pin // by entry id
	// variants are this Cache's files of pruned scans in use, by path.
	variants map[string]*os.File
}

// pin is this process's shared lock on an entry in use.
type pin struct {
	f *os.File
	n int
}

// Open opens (creating it) the scan cache in dir, bounded to maxBytes of
// cached data (0: DefaultMaxBytes). Call Close when done.
func Open(dir string, maxBytes int64) (*Cache, error) {
	if maxBytes < 0 {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "scan cache size %d is negative; give a size in bytes, or 0 for the default (10 GiB)", maxBytes)
	}
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("scan cache: %w", err)
	}
	return &Cache{dir: dir, maxBytes: maxBytes, pins: map[string]*pin{}, variants: map[string]*os.File{}}, nil
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// KeepRecent keeps entries used within d from eviction, beyond the size
// bound if need be. A caller that releases an entry as soon as it has its
// path (before the engine opens the file) sets it, so that the file is
// still there when the engine reads it.
func (c *Cache) KeepRecent(d time.Duration) { c.keepRecent = d }

// Close releases every entry this Cache still has in use, and removes the
// files of its pruned scans.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for path, f := range c.variants {
		os.Remove(path)
		f.Close()
		delete(c.variants, path)
	}
	for id, p := range c.pins {
		p.f.Close()
		delete(c.pins, id)
	}
	return nil
}

// entryID names the entry of one object version.
func entryID(key, etag string) string {
	h := sha256.Sum256([]byte(key + "\x00" + etag))
	return hex.EncodeToString(h[:20])
}

func (c *Cache) path(id, ext string) string { return filepath.Join(c.dir, id+ext) }

const (
	extData    = ".parquet"
	extSidecar = ".json"
	extUse     = ".lock"
	extFill    = ".fill"
)

// Scan is what one scan reads of a Parquet file.
type Scan struct {
	// Columns are top-level names, matched case-insensitively; nil means
	// all, an empty slice none (as for count(*)).
	Columns []string
	// Fields, when not nil, are the columns by position among the file's
	// top-level fields (0-based) instead of Columns, for scans that read
	// files by position (DuckDB's read_parquet(...) AS f(a, b, ...), whose
	// file column names may differ from the table's). Positions past the
	// file's last field are reported in MissingColumns as "#N".
	Fields []int
	// RowGroups, when set, decides from the file's footer which row groups
	// the scan needs: keep[i] false promises that no row of row group i is
	// needed (its statistics rule out the scan's filter). Nil or a slice
	// of the wrong length keeps them all. Pruned row groups are not
	// fetched, and the returned file's footer does not list them, so no
	// reader can touch their unfetched bytes.
	RowGroups func(md *metadata.FileMetaData) (keep []bool)
	// PlanOnly fetches at most the footer: the stats say what the scan
	// would fetch, and the returned path is not in use (no Release).
	PlanOnly bool
}

// Materialize makes the local copy of the object at key hold everything a
// Parquet scan of columns (top-level names, matched case-insensitively;
// nil means all, an empty slice none, as for count(*)) reads: the
// footer, and every selected column's chunks, page indexes and bloom
// filters in every row group. It fetches only the ranges not already
// cached, and returns the path of a file of the object's full size that
// DuckDB (or any Parquet reader) can scan for those columns; the other
// columns' bytes are holes. The scan must name no other column, filters
// included.
//
// The entry is in use (never evicted, by any process) from Materialize until
// Release(localPath) or Close; every successful Materialize needs one
// Release.
//
// Errors: ErrDataLoss when the object is not a readable Parquet file or is
// shorter than Stat says; ErrConflict when its ETag changed while it was
// being fetched (retry); the source's own errors otherwise. After a
// DataLoss or Conflict nothing fetched in this call is kept.
func (c *Cache) Materialize(ctx context.Context, src Source, key string, columns []string) (localPath string, st FetchStats, err error) {
	return c.MaterializeScan(ctx, src, key, Scan{Columns: columns})
}

// MaterializeFields is Materialize with the columns given by position
// (Scan.Fields).
func (c *Cache) MaterializeFields(ctx context.Context, src Source, key string, fields []int) (localPath string, st FetchStats, err error) {
	if fields == nil {
		fields = []int{}
	}
	return c.MaterializeScan(ctx, src, key, Scan{Fields: fields})
}

// MaterializeScan is Materialize for the scan s. When s.RowGroups prunes
// some row groups, the path is a file of this call's own (see Scan), which
// Release removes; otherwise it is the entry's shared data file.
func (c *Cache) MaterializeScan(ctx context.Context, src Source, key string, s Scan) (localPath string, st FetchStats, err error) {
	if key == "" {
		return "", st, errdefs.New(errdefs.ErrInvalidArgument, "scan cache: empty object key")
	}
	size, etag, err := src.Stat(ctx, key)
	if err != nil {
		return "", st, err
	}
	if etag == "" {
		return "", st, errdefs.New(errdefs.ErrInvalidArgument, "scan cache: object %s has no ETag; the cache keys objects by ETag", key)
	}
	if size < minParquetSize {
		return "", st, notParquet(key, fmt.Sprintf("it is %d bytes long", size))
	}
	id := entryID(key, etag)
	if err := c.pin(ctx, id); err != nil {
		return "", st, err
	}
	f := &fill{c: c, id: id, src: src, key: key, etag: etag, size: size, scan: s}
	fetched, err := f.run(ctx)
	st = f.st
	if err != nil {
		c.unpin(id)
		if errors.Is(err, errdefs.ErrDataLoss) || errors.Is(err, errdefs.ErrConflict) {
			c.drop(id)
		}
		return "", st, err
	}
	if fetched {
		if err := c.evict(ctx); err != nil {
			c.unpin(id)
			return "", st, err
		}
	}
	if s.PlanOnly {
		c.unpin(id)
		return c.path(id, extData), st, nil
	}
	if f.pruned == nil {
		return c.path(id, extData), st, nil
	}
	p, err := c.variant(id, f.pruned)
	if err != nil {
		c.unpin(id)
		return "", st, err
	}
	return p, st, nil
}

// Release ends the use of an entry that Materialize returned, and removes
// the call's own file if it had one.
func (c *Cache) Release(localPath string) {
	if id, ok := c.releaseVariant(localPath); ok {
		c.unpin(id)
		return
	}
	base := filepath.Base(localPath)
	c.unpin(strings.TrimSuffix(base, extData))
}

func (c *Cache) pin(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pins[id]; p != nil {
		p.n++
		return nil
	}
	f, err := lock(ctx, c.path(id, extUse), unix.LOCK_SH)
	if err != nil {
		return err
	}
	c.pins[id] = &pin{f: f, n: 1}
	return nil
}

func (c *Cache) unpin(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pins[id]
	if p == nil {
		return
	}
	if p.n--; p.n == 0 {
		p.f.Close()
		delete(c.pins, id)
	}
}

// drop removes an entry unless some holder still uses it.
func (c *Cache) drop(id string) {
	c.mu.Lock()
	inUse := c.pins[id] != nil
	c.mu.Unlock()
	if !inUse {
		c.remove(id) // best effort: a busy entry stays, its records still valid
	}
}
