package iceberg

import (
	"context"

	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
)

// CacheFetcher gives scans of a remote warehouse local copies of the data
// files through the scan cache: only the footer and the chunks of the
// columns a scan reads, in the row groups that survive its filter, are
// fetched, and a later scan fetches only the chunks it lacks. An entry
// stays in use (never evicted) until the context of the call that
// materialized it is done: the query engine reads the files after
// planning, for as long as the query runs, so that context must last as
// long as the query (a request's, a command's); Cache.Close ends the rest.
type CacheFetcher struct {
	Cache  *scancache.Cache
	Source scancache.Source
}

var _ StatsFetcher = (*CacheFetcher)(nil)

// Materialize implements Fetcher.
func (f *CacheFetcher) Materialize(ctx context.Context, key string, columns []string) (string, error) {
	p, _, err := f.MaterializeScan(ctx, key, scancache.Scan{Columns: columns})
	return p, err
}

// MaterializeScan implements StatsFetcher. Under a context of PlanOnly it
// fetches at most the footer (scancache.Scan.PlanOnly).
func (f *CacheFetcher) MaterializeScan(ctx context.Context, key string, scan scancache.Scan) (string, scancache.FetchStats, error) {
	scan.PlanOnly = scan.PlanOnly || isPlanOnly(ctx)
	p, st, err := f.Cache.MaterializeScan(ctx, f.Source, key, scan)
	if err != nil || scan.PlanOnly {
		return p, st, err
	}
	context.AfterFunc(ctx, func() { f.Cache.Release(p) })
	return p, st, nil
}

type planOnlyKey struct{}

// PlanOnly marks ctx for planning without reading data (EXPLAIN): scans of
// a remote warehouse fetch at most the footers of the files they keep,
// their plan says what running them would fetch, and its file paths are
// not to be read.
func PlanOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, planOnlyKey{}, true)
}

func isPlanOnly(ctx context.Context) bool {
	v, _ := ctx.Value(planOnlyKey{}).(bool)
	return v
}
