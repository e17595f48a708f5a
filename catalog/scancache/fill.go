package scancache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/zeebo/xxh3"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// fill brings one entry up to date for one scan, under the entry's fill
// lock.
type fill struct {
	c    *Cache
	id   string
	src  Source
	key  string
	etag string
	size int64
	scan Scan

	// pruned is set when the scan's row groups were pruned: what its own
	// file must hold.
	pruned *prunedFile

	data  *os.File
	sc    *sidecar
	dirty bool // sc changed without a fetch
	buf   []byte
	st    FetchStats
}

// run fetches what the scan needs and records it; fetched reports whether
// anything was read from the source.
func (f *fill) run(ctx context.Context) (fetched bool, err error) {
	lk, err := lock(ctx, f.c.path(f.id, extFill), unix.LOCK_EX)
	if err != nil {
		return false, err
	}
	defer lk.Close()
	if err := f.open(); err != nil {
		return false, err
	}
	defer f.data.Close()
	f.buf = make([]byte, 1<<20)
	trusted := f.sc.Stamp != nil && *f.sc.Stamp == stampOf(f.data)
	if !trusted {
		if err := f.check(); err != nil {
			return false, err
		}
	}

	footer, md, err := f.footer(ctx)
	if err != nil {
		return false, err
	}
	cols, missingFields := f.scan.Columns, []string(nil)
	if f.scan.Fields != nil {
		cols, missingFields = fieldNames(md, f.scan.Fields)
	}
	var keep []bool
	if f.scan.RowGroups != nil {
		if k := f.scan.RowGroups(md); len(k) == md.NumRowGroups() {
			keep = k
		}
	}
	need, missingCols, err := chunkSpans(f.key, md, footer, cols, keep)
	if err != nil {
		return false, err
	}
	f.st.MissingColumns = append(missingFields, missingCols...)
	f.st.RowGroups = md.NumRowGroups()
	for _, k := range keep {
		if !k {
			f.st.RowGroupsPruned++
		}
	}
	need = normalize(need)
	if f.st.RowGroupsPruned > 0 {
		f.pruned = &prunedFile{md: md, keep: keep, need: need, size: f.size}
	}
	missing := subtract(need, normalize(f.sc.spans()))
	f.st.BytesCached += total(need) - total(missing)
	if f.scan.PlanOnly {
		f.st.PlanOnly = true
		f.st.BytesToFetch, f.st.RequestsToFetch = total(missing), len(missing)
	} else if err := f.fetchAll(ctx, missing); err != nil {
		return false, err
	}
	if f.st.BytesFetched > 0 && !f.scan.PlanOnly {
		head := make([]byte, len(magic))
		if _, err := f.data.ReadAt(head, 0); err != nil {
			return false, fmt.Errorf("scan cache: %w", err)
		}
		if string(head) != string(magic) {
			return false, notParquet(f.key, "no PAR1 magic at its start")
		}
	}
	f.st.Hit = f.st.BytesFetched == 0
	if f.scan.PlanOnly {
		f.st.Hit = len(missing) == 0
	}
	if f.st.BytesFetched > 0 {
		if err := f.sameObject(ctx); err != nil {
			return false, err
		}
		f.sc.Stamp = nil
	} else if !trusted {
		if st := stampOf(f.data); st.settled(time.Now()) {
			f.sc.Stamp, f.dirty = &st, true
		}
	}
	if f.st.BytesFetched > 0 || f.dirty {
		if err := f.sc.write(f.c.path(f.id, extSidecar)); err != nil {
			return false, fmt.Errorf("scan cache: %w", err)
		}
		return f.st.BytesFetched > 0, nil
	}
	now := time.Now()
	os.Chtimes(f.c.path(f.id, extSidecar), now, now) // last use, for LRU
	return false, nil
}

// open opens the entry's data file at the object's size and loads its
// sidecar; a missing or damaged sidecar starts an empty record. The data
// file is repaired in place, never replaced: other holders may be reading
// it.
func (f *fill) open() error {
	sc, err := readSidecar(f.c.path(f.id, extSidecar), f.key, f.etag, f.size)
	if err != nil {
		return fmt.Errorf("scan cache: %w", err)
	}
	if sc == nil {
		sc = &sidecar{Version: sidecarVersion, Key: f.key, ETag: f.etag, Size: f.size}
	}
	f.sc = sc
	data, err := os.OpenFile(f.c.path(f.id, extData), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("scan cache: %w", err)
	}
	fi, err := data.Stat()
	if err == nil && fi.Size() != f.size {
		err = data.Truncate(f.size) // sparse; the checksums catch lost bytes
	}
	if err != nil {
		data.Close()
		return fmt.Errorf("scan cache: %w", err)
	}
	f.data = data
	return nil
}

// footer returns the span and decoded metadata of the object's footer,
// fetching the object's tail if the cached one is missing or damaged.
func (f *fill) footer(ctx context.Context) (span, *metadata.FileMetaData, error) {
	if fs := f.sc.Footer; fs.Len > 0 {
		whole := span{Off: fs.Off, Len: fs.Len + 8}
		if len(subtract([]span{whole}, normalize(f.sc.spans()))) == 0 {
			b := make([]byte, fs.Len)
			if _, err := f.data.ReadAt(b, fs.Off); err != nil {
				return span{}, nil, fmt.Errorf("scan cache: %w", err)
			}
			md, err := parseFooter(f.key, b)
			if err == nil {
				f.st.BytesCached += whole.Len
				return fs, md, nil
			}
		}
	}
	// A plan reads the footer alone; a scan reads a tail that holds most
	// footers, and the last chunks with them.
	ts := int64(tailSize)
	if f.scan.PlanOnly {
		ts = 8
	}
	tail := span{Off: max(0, f.size-ts), Len: min(f.size, ts)}
	if err := f.fetch(ctx, tail); err != nil {
		return span{}, nil, err
	}
	b := make([]byte, tail.Len)
	if _, err := f.data.ReadAt(b, tail.Off); err != nil {
		return span{}, nil, fmt.Errorf("scan cache: %w", err)
	}
	fs, err := footerSpan(f.key, f.size, b[len(b)-8:])
	if err != nil {
		return span{}, nil, err
	}
	if fs.Off < tail.Off {
		if err := f.fetch(ctx, span{Off: fs.Off, Len: tail.Off - fs.Off}); err != nil {
			return span{}, nil, err
		}
		b = make([]byte, fs.Len)
		if _, err := f.data.ReadAt(b, fs.Off); err != nil {
			return span{}, nil, fmt.Errorf("scan cache: %w", err)
		}
	} else {
		b = b[fs.Off-tail.Off : fs.end()-tail.Off]
	}
	md, err := parseFooter(f.key, b)
	if err != nil {
		return span{}, nil, err
	}
	f.sc.Footer = fs
	return fs, md, nil
}

// check verifies every cached record and forgets those whose bytes no
// longer match their checksum, so they are fetched again when needed.
func (f *fill) check() error {
	kept := f.sc.Ranges[:0]
	for _, r := range f.sc.Ranges {
		ok, err := verify(f.data, r, f.buf)
		if err != nil {
			return fmt.Errorf("scan cache: %w", err)
		}
		if !ok {
			f.st.BytesRefetched += r.Len
			f.dirty = true
			continue
		}
		kept = append(kept, r)
	}
	f.sc.Ranges = kept
	return nil
}

// fetchParallel is how many range requests of one object run at once.
const fetchParallel = 4

// fetch reads s from the source into the data file and records it.
func (f *fill) fetch(ctx context.Context, s span) error { return f.fetchAll(ctx, []span{s}) }

// fetchAll fetches the spans, up to fetchParallel at a time, and records
// each one fetched whole.
func (f *fill) fetchAll(ctx context.Context, spans []span) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchParallel)
	var mu sync.Mutex
	for _, s := range spans {
		g.Go(func() error {
			r, n, err := f.fetchRange(gctx, s)
			mu.Lock()
			defer mu.Unlock()
			f.st.Requests++
			f.st.BytesFetched += n
			if err == nil {
				f.sc.add(r)
			}
			return err
		})
	}
	return g.Wait()
}

// fetchRange reads s into the data file and returns its record and the
// number of bytes read.
func (f *fill) fetchRange(ctx context.Context, s span) (_ record, read int64, _ error) {
	rc, err := f.src.ReadRange(ctx, f.key, s.Off, s.Len)
	if err != nil {
		return record{}, 0, err
	}
	defer rc.Close()
	buf := make([]byte, min(s.Len, 1<<20))
	h := xxh3.New()
	for off := s.Off; off < s.end(); {
		n := min(int64(len(buf)), s.end()-off)
		m, err := io.ReadFull(rc, buf[:n])
		read += int64(m)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			if err := f.sameObject(ctx); err != nil {
				return record{}, read, err
			}
			return record{}, read, errdefs.New(errdefs.ErrDataLoss, "object %s is shorter than its stated size %d: reading [%d, %d) ended at %d",
				f.key, f.size, s.Off, s.end(), off+int64(m))
		}
		if err != nil {
			return record{}, read, err
		}
		if _, err := f.data.WriteAt(buf[:n], off); err != nil {
			return record{}, read, fmt.Errorf("scan cache: %w", err)
		}
		h.Write(buf[:n])
		off += n
	}
	return record{span: s, Sum: strconv.FormatUint(h.Sum64(), 16)}, read, nil
}

// sameObject checks, after fetching, that the object still has the ETag
// and size the fetch started with: the ranges came from one version.
func (f *fill) sameObject(ctx context.Context) error {
	size, etag, err := f.src.Stat(ctx, f.key)
	if err != nil {
		return err
	}
	if etag != f.etag || size != f.size {
		return errdefs.WithHint(errdefs.ErrConflict, "retry the query; data files are never rewritten, so something outside the lakehouse changed it",
			"object %s changed while it was being fetched (ETag %s, now %s)", f.key, f.etag, etag)
	}
	return nil
}
