package iceberg

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net/url"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"

	// Substrait's function catalog is parsed on first use, not as every
	// process starts (see the package).
	_ "github.com/lakehouse-dev/lakehouse/internal/lazysubstrait"
)

// Options configure a Format.
type Options struct {
	// Storage is the warehouse new tables are created in and table files
	// are read from. Default: a local warehouse in Warehouse.
	Storage warehouse.Storage
	// Warehouse is the absolute local directory of the default Storage;
	// required without a Storage.
	Warehouse string
	// Fetcher gives scans local copies of data files. Default: the files
	// themselves for a local warehouse, else whole-object downloads
	// into CacheDir.
	Fetcher Fetcher
	// CacheDir holds the default Fetcher's downloads; required for a
	// remote Storage without a Fetcher.
	CacheDir string
	// OpenSource opens the bucket of an s3:// import source (loc.Path is
	// empty). Default: S3 with the standard AWS configuration.
	OpenSource func(ctx context.Context, loc warehouse.Location) (warehouse.Storage, error)
	// Allocator allocates the Arrow memory of imports. Default
	// memory.DefaultAllocator.
	Allocator memory.Allocator
	// BatchRows is the number of rows per Arrow batch when an import
	// streams a file. Default 65536.
	BatchRows int
	// TargetFileSize is the size data files written by an import roll over
	// at. Default 512 MiB (iceberg-go's default).
	TargetFileSize int64

	// maxCSVRecord bounds one CSV record; tests lower it.
	maxCSVRecord int64
	// rowGroupRows, if set, is the row group size of new tables' data
	// files; tests lower it.
	rowGroupRows int
}

// Default option values.
const (
	DefaultBatchRows      = 64 * 1024
	DefaultTargetFileSize = 512 << 20
)

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
	if o.Storage == nil {
		if err := o.localStorage(); err != nil {
			return err
		}
	}
	if o.Fetcher == nil {
		if _, local := o.Storage.(warehouse.LocalPather); !local && o.CacheDir == "" {
			return errdefs.New(errdefs.ErrInvalidArgument, "iceberg: a remote warehouse needs a Fetcher or a CacheDir")
		}
		o.Fetcher = &warehouse.Downloader{Storage: o.Storage, Dir: o.CacheDir}
	}
	if o.OpenSource == nil {
		o.OpenSource = func(ctx context.Context, loc warehouse.Location) (warehouse.Storage, error) {
			return warehouse.NewS3(ctx, loc, warehouse.S3Options{})
		}
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.BatchRows < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "iceberg: BatchRows is negative")
	}
	if o.BatchRows == 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.TargetFileSize < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "iceberg: TargetFileSize is negative")
	}
	if o.TargetFileSize == 0 {
		o.TargetFileSize = DefaultTargetFileSize
	}
	if o.maxCSVRecord == 0 {
		o.maxCSVRecord = maxCSVRecordBytes
	}
	return nil
}

// localStorage opens the default Storage, a local warehouse in Warehouse.
func (o *Options) localStorage() error {
	if o.Warehouse == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "iceberg: the warehouse directory is not set")
	}
	if !filepath.IsAbs(o.Warehouse) {
		return errdefs.New(errdefs.ErrInvalidArgument, "iceberg: warehouse %q is not an absolute path", o.Warehouse)
	}
	o.Warehouse = filepath.Clean(o.Warehouse)
	// iceberg-go builds data and metadata paths with net/url: a path it
	// would escape (spaces, '%', '#', '?') would not name the same file.
	if (&url.URL{Path: o.Warehouse}).String() != o.Warehouse {
		return errdefs.New(errdefs.ErrInvalidArgument,
			"iceberg: warehouse %q contains characters that are not allowed in table locations (spaces, %%, #, ?)", o.Warehouse)
	}
	st, err := warehouse.NewLocal(o.Warehouse, "")
	if err != nil {
		return fmt.Errorf("iceberg: %w", err)
	}
	o.Storage = st
	return nil
}

// Fetcher gives scans a local file with the content of a data file: the
// DuckDB that reads them opens local paths only.
type Fetcher interface {
	// Materialize returns a local path holding the object key (relative
	// to the warehouse root) of which the scan reads columns (nil: all).
	// Errors are the Storage's (ErrNotFound for a missing object,
	// ErrUnavailable when the store cannot be reached).
	Materialize(ctx context.Context, key string, columns []string) (localPath string, err error)
}

// StatsFetcher is a Fetcher that fetches only what a scan reads and
// reports what that cost (the scan cache): the scan's columns (by
// position among the file's top-level fields when scan.Fields is set,
// for tables with one schema: their files keep the table's column order,
// and queries read them by position, whatever names the writer gave),
// and only the row groups scan.RowGroups keeps.
type StatsFetcher interface {
	Fetcher
	MaterializeScan(ctx context.Context, key string, scan scancache.Scan) (localPath string, st scancache.FetchStats, err error)
}

// Format implements catalog.TableFormat with apache/iceberg-go over a local
// warehouse directory. It is safe for concurrent use.
type Format struct {
	opts Options
}

var _ catalog.TableFormat = (*Format)(nil)

// New returns a Format. A local warehouse directory is created if missing.
func New(opts Options) (*Format, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Format{opts: opts}, nil
}

// Storage is the warehouse of the format.
func (f *Format) Storage() warehouse.Storage { return f.opts.Storage }

// tableIdent is iceberg-go's form of a table identifier.
func tableIdent(id catalog.TableIdent) table.Identifier {
	return table.Identifier{string(id.Namespace), id.Name}
}

// load opens the table state e names, with a fresh staging catalog whose
// base is that state.
func (f *Format) load(ctx context.Context, id catalog.TableIdent, e catalog.TableEntry) (*table.Table, *stagingCatalog, error) {
	what := "table " + id.String()
	if id == (catalog.TableIdent{}) {
		what = "table state"
	}
	if e.MetadataLocation == "" {
		return nil, nil, errdefs.New(errdefs.ErrInvalidArgument, "%s: the catalog entry has no metadata location", what)
	}
	fs := newWriteOnceFS(ctx, f.opts.Storage)
	cat := &stagingCatalog{fs: fs}
	tbl, err := table.NewFromLocation(ctx, tableIdent(id), e.MetadataLocation, cat.fsFunc, cat)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, nil, errdefs.New(errdefs.ErrNotFound, "%s: metadata file %s does not exist", what, e.MetadataLocation)
		}
		return nil, nil, fmt.Errorf("%s: reading metadata file %s: %w", what, e.MetadataLocation, err)
	}
	cat.base, cat.baseLoc = tbl.Metadata(), tbl.MetadataLocation()
	return tbl, cat, nil
}

// entryOf returns the catalog entry of a table state.
func entryOf(md table.Metadata, loc string) catalog.TableEntry {
	e := catalog.TableEntry{
		MetadataLocation: loc,
		TableUUID:        md.TableUUID().String(),
		SchemaID:         md.CurrentSchema().ID,
	}
	if s := md.CurrentSnapshot(); s != nil {
		e.SnapshotID = s.SnapshotID
	}
	return e
}
