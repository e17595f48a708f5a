package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	urfave "github.com/urfave/cli/v2"
)

// ScanCacheDir is the scan cache of an object-store warehouse:
// <data-dir>/cache/scan.
func (e *Env) ScanCacheDir() string { return filepath.Join(e.DataDir, "cache", "scan") }

func (e *Env) cacheCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "cache",
		Usage: "the local scan cache of data files read from object storage",
		Description: "Queries and pipeline scans over an S3 warehouse read data files through a cache under\n" +
			"<data-dir>/cache/scan: each file is fetched by range requests, only the footer and the\n" +
			"columns a scan reads, and a later scan needing more columns fetches only those.\n" +
			"Entries are keyed by object and ETag, checked by checksums, and evicted least recently\n" +
			"used beyond the size bound (10 GiB).",
		Subcommands: []*urfave.Command{
			{Name: "ls", Usage: "list cached files (object, size, cached bytes, last used)", Action: e.cacheList},
			{
				Name: "clear", Usage: "remove every cached file no scan is using",
				Description: "Files a running query or run is reading are kept and listed; clear again when it is done.",
				Action:      e.cacheClear,
			},
		},
	}
}

// scanCache opens the scan cache, or returns nil if it was never created
// (listing and clearing an absent cache change nothing on disk).
func (e *Env) scanCache() (*scancache.Cache, error) {
	dir := e.ScanCacheDir()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return scancache.Open(dir, 0)
}

// viewCacheEntries are entries as shown: times in UTC to the second. The
// JSON form is scancache.Entry's.
func viewCacheEntries(es []scancache.Entry) []scancache.Entry {
	out := make([]scancache.Entry, 0, len(es))
	for _, x := range es {
		x.LastUsed = x.LastUsed.UTC().Truncate(time.Second)
		out = append(out, x)
	}
	return out
}

// cacheKey is how a table shows an entry's object.
func cacheKey(v scancache.Entry) string {
	if v.Key == "" {
		return "(damaged entry, refetched on next use)"
	}
	return v.Key
}

func (e *Env) cacheList(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	cache, err := e.scanCache()
	if err != nil {
		return err
	}
	var es []scancache.Entry
	if cache != nil {
		defer cache.Close()
		if es, err = cache.List(); err != nil {
			return err
		}
	}
	views := viewCacheEntries(es)
	return e.emit(views, func(w io.Writer) error {
		t := e.newTable("OBJECT", "SIZE", "CACHED", "LAST USED")
		var cached int64
		for _, v := range views {
			t.row(cacheKey(v), humanBytes(v.Size), humanBytes(v.Cached), formatTime(v.LastUsed))
			cached += v.Cached
		}
		if err := t.write(w); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "%s, %s cached in %s\n", plural(int64(len(views)), "file", "files"), humanBytes(cached), e.ScanCacheDir())
		return err
	})
}

type cacheClearView struct {
	Removed []scancache.Entry `json:"removed"`
	InUse   []scancache.Entry `json:"in_use"`
	Freed   int64             `json:"freed"`
}

func (e *Env) cacheClear(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	cache, err := e.scanCache()
	if err != nil {
		return err
	}
	var removed, busy []scancache.Entry
	if cache != nil {
		defer cache.Close()
		if removed, busy, err = cache.Clear(c.Context); err != nil {
			return err
		}
	}
	v := cacheClearView{Removed: viewCacheEntries(removed), InUse: viewCacheEntries(busy)}
	for _, x := range removed {
		v.Freed += x.Weight()
	}
	return e.emit(v, func(w io.Writer) error {
		for _, x := range v.InUse {
			if _, err := fmt.Fprintf(w, "kept %s: in use by a running scan\n", cacheKey(x)); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(w, "removed %s, %s\n", plural(int64(len(v.Removed)), "file", "files"), humanBytes(v.Freed))
		return err
	})
}
