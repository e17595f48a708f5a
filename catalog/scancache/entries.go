package scancache

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Entry is one cached object version.
type Entry struct {
	// ID names the entry's files in the cache directory.
	ID string `json:"id"`
	// Key and ETag identify the object; empty for an entry whose sidecar
	// is missing or damaged (its next use refetches it).
	Key  string `json:"key"`
	ETag string `json:"etag"`
	// Size is the object's size; Cached the bytes of it held, verified by
	// checksums; Disk the space the sparse data file takes.
	Size   int64 `json:"size"`
	Cached int64 `json:"cached"`
	Disk   int64 `json:"disk"`
	// Ranges is the number of fetched ranges.
	Ranges int `json:"ranges"`
	// LastUsed is when a scan last used the entry.
	LastUsed time.Time `json:"last_used"`
	// Path is the local data file.
	Path string `json:"path"`
}

// Weight is what the entry counts against the size bound: its cached
// bytes, or the data file's disk usage if larger.
func (e Entry) Weight() int64 { return max(e.Cached, e.Disk) }

// isID reports whether s is an entry id (entryID's hex).
func isID(s string) bool {
	if len(s) != 40 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// List returns the cached entries, most recently used first.
func (c *Cache) List() ([]Entry, error) {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("scan cache: %w", err)
	}
	seen := map[string]bool{}
	var out []Entry
	for _, de := range des {
		id, _, _ := strings.Cut(de.Name(), ".")
		if !isID(id) || seen[id] {
			continue
		}
		seen[id] = true
		e, ok := c.entry(id)
		if ok {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastUsed.Equal(out[j].LastUsed) {
			return out[i].LastUsed.After(out[j].LastUsed)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// entry describes the entry id from its files; ok is false when it has no
// data file or sidecar (only lock files, or already removed).
func (c *Cache) entry(id string) (Entry, bool) {
	e := Entry{ID: id, Path: c.path(id, extData)}
	found := false
	if fi, err := os.Stat(e.Path); err == nil {
		found = true
		e.LastUsed = fi.ModTime()
		e.Disk = diskUsage(fi) + c.variantsDisk(id)
	}
	sp := c.path(id, extSidecar)
	if fi, err := os.Stat(sp); err == nil {
		found = true
		e.LastUsed = fi.ModTime()
		if sc, err := loadSidecar(sp); err == nil {
			e.Key, e.ETag, e.Size, e.Cached, e.Ranges = sc.Key, sc.ETag, sc.Size, sc.cached(), len(sc.Ranges)
		}
	}
	return e, found
}

// diskUsage is the space a file takes on disk (a sparse file's holes take
// none).
func diskUsage(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}

// remove deletes an entry's files unless it is in use (errBusy).
func (c *Cache) remove(id string) error {
	lk, err := tryLock(c.path(id, extUse), unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer lk.Close()
	var errs []error
	if err := os.RemoveAll(c.path(id, extVariants)); err != nil {
		errs = append(errs, err)
	}
	for _, ext := range []string{extSidecar, extSidecar + ".tmp", extData, extFill, extUse} {
		if err := os.Remove(c.path(id, ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scan cache: removing entry %s: %w", id, err)
	}
	return nil
}

func (c *Cache) pinned(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pins[id] != nil
}

// evict removes least recently used entries not in use until the cache
// holds at most its bound. One process evicts at a time; the others skip.
func (c *Cache) evict(ctx context.Context) error {
	lk, err := tryLock(filepath.Join(c.dir, "evict.lock"), unix.LOCK_EX)
	if errors.Is(err, errBusy) {
		return nil
	}
	if err != nil {
		return err
	}
	defer lk.Close()
	es, err := c.List()
	if err != nil {
		return err
	}
	var sum int64
	for _, e := range es {
		sum += e.Weight()
	}
	for i := len(es) - 1; i >= 0 && sum > c.maxBytes; i-- {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e := es[i]
		if c.pinned(e.ID) || c.keepRecent > 0 && time.Since(e.LastUsed) < c.keepRecent {
			continue
		}
		err := c.remove(e.ID)
		if errors.Is(err, errBusy) {
			continue
		}
		if err != nil {
			return err
		}
		sum -= e.Weight()
	}
	return nil
}

// Clear removes every entry not in use and returns the removed entries and
// those skipped because a scan uses them.
func (c *Cache) Clear(ctx context.Context) (removed, busy []Entry, err error) {
	es, err := c.List()
	if err != nil {
		return nil, nil, err
	}
	for _, e := range es {
		if ctx.Err() != nil {
			return removed, busy, ctx.Err()
		}
		if c.pinned(e.ID) {
			busy = append(busy, e)
			continue
		}
		err := c.remove(e.ID)
		switch {
		case errors.Is(err, errBusy):
			busy = append(busy, e)
		case err != nil:
			return removed, busy, err
		default:
			removed = append(removed, e)
		}
	}
	return removed, busy, nil
}
