package cli

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// embeddedConfig is the layout of the embedded catalog under a data
// directory:
//
//	<data-dir>/
//	  catalog.db      bbolt store: refs, commits, trees, records
//	  profiles.json   profile settings of the command line
//	  warehouse.json  where the tables are (the warehouse settings)
//	  warehouse/      Iceberg tables: metadata and data files (the default
//	                  warehouse; else file:///path or s3://bucket/prefix)
//	  cache/          local copies of the data files of a remote warehouse
type embeddedConfig struct {
	DataDir   string
	Catalog   string
	Warehouse warehouse.Storage
	// CacheDir holds scans' copies of remote data files.
	CacheDir string
	// S3 configures the clients of s3:// import sources.
	S3 warehouse.S3Options
	// LockTimeout is how long to wait for another process holding the
	// catalog file before failing with errdefs.ErrUnavailable.
	LockTimeout time.Duration
	// Author of commits whose options name none.
	Author string
	// Now is the commit clock; nil means real time.
	Now func() time.Time
	// Exclusive holds the catalog file for this process alone, for as
	// long as it runs (lakehouse serve); otherwise it is held only while
	// a transaction runs.
	Exclusive bool
}

// openEmbedded wires the in-process catalog: the bbolt store, the Iceberg
// table format over the warehouse, and the Local service
// over both. The same format plans the scans of queries and pipeline
// inputs (catalog.TableScanner).
func openEmbedded(ctx context.Context, cfg embeddedConfig) (catalog.Service, catalog.TableScanner, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, nil, fileError("create", cfg.DataDir, err)
	}
	// The file is held only while a transaction runs, so other lakehouse
	// processes (a query while a pipeline runs) share the data directory.
	// A server holds it alone and commits in groups.
	var store catalog.Store
	var err error
	if cfg.Exclusive {
		store, err = bolt.Open(cfg.Catalog, bolt.Options{Timeout: cfg.LockTimeout})
	} else {
		store, err = bolt.OpenShared(cfg.Catalog, bolt.Options{Timeout: cfg.LockTimeout})
	}
	if err != nil {
		return nil, nil, err
	}
	var fetcher iceberg.Fetcher
	var cache *scancache.Cache
	if _, local := cfg.Warehouse.(warehouse.LocalPather); !local && cfg.Warehouse != nil {
		cache, err = scancache.Open(filepath.Join(cfg.CacheDir, "scan"), 0)
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		// An entry stays in use until the context of the query that
		// planned its scan is done (see iceberg.CacheFetcher).
		fetcher = &iceberg.CacheFetcher{Cache: cache, Source: cfg.Warehouse}
	}
	format, err := iceberg.New(iceberg.Options{Storage: cfg.Warehouse, Fetcher: fetcher, CacheDir: filepath.Join(cfg.CacheDir, "objects"),
		OpenSource: func(ctx context.Context, loc warehouse.Location) (warehouse.Storage, error) {
			return warehouse.NewS3(ctx, loc, cfg.S3)
		}})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	svc, err := catalog.NewLocal(ctx, store, format, catalog.LocalOptions{Author: cfg.Author, Now: cfg.Now})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	if cache != nil {
		return cachingService{svc, cache}, format, nil
	}
	return svc, format, nil
}

// cachingService is the catalog of an S3 warehouse: closing it also ends
// the scan cache's use of the entries its queries read (their contexts
// may outlive the command) and removes their pruned files.
type cachingService struct {
	*catalog.Local
	cache *scancache.Cache
}

func (s cachingService) Close() error {
	s.cache.Close()
	return s.Local.Close()
}

// tableScans is the table format of the opened catalog, through which
// queries and pipeline inputs plan their scans.
func (e *Env) tableScans(ctx context.Context) (catalog.TableScanner, error) {
	if _, err := e.Service(ctx); err != nil {
		return nil, err
	}
	return e.scans, nil
}

// newSQLParser is the parser the planner reads SQL models and filters
// with: DuckDB's, opening its scratch DuckDB on first use so that projects
// without SQL never start one. Close it when planning is done.
func newSQLParser() *duckdb.Parser { return &duckdb.Parser{} }
