package iceberg

import (
	"context"

	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
)

// CacheFetcher gives scans of a remote warehouse local copies of the data
// files through the scan cache: only the footer and the chunks of the
// columns a scan reads are fetched, and a later scan fetches only the
// chunks it lacks. Entries are released as soon as the scan has their
// paths; the cache should keep recently used entries
// (scancache.Cache.KeepRecent) for as long as a query may take to open
// them.
type CacheFetcher struct {
	Cache  *scancache.Cache
	Source scancache.Source
}

var _ StatsFetcher = (*CacheFetcher)(nil)

// Materialize implements Fetcher.
func (f *CacheFetcher) Materialize(ctx context.Context, key string, columns []string) (string, error) {
	p, _, err := f.MaterializeStats(ctx, key, columns, nil)
	return p, err
}

// MaterializeStats implements StatsFetcher.
func (f *CacheFetcher) MaterializeStats(ctx context.Context, key string, columns []string, fields []int) (string, scancache.FetchStats, error) {
	var (
		p   string
		st  scancache.FetchStats
		err error
	)
	if fields != nil {
		p, st, err = f.Cache.MaterializeFields(ctx, f.Source, key, fields)
	} else {
		p, st, err = f.Cache.Materialize(ctx, f.Source, key, columns)
	}
	if err != nil {
		return "", st, err
	}
	f.Cache.Release(p)
	return p, st, nil
}
