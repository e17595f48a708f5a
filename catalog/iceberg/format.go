package iceberg

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Options configure a Format.
type Options struct {
	// Warehouse is the absolute local directory new tables are created
	// under. Required.
	Warehouse string
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
}

// Default option values.
const (
	DefaultBatchRows      = 64 * 1024
	DefaultTargetFileSize = 512 << 20
)

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
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

// Format implements catalog.TableFormat with apache/iceberg-go over a local
// warehouse directory. It is safe for concurrent use.
type Format struct {
	opts Options
}

var _ catalog.TableFormat = (*Format)(nil)

// New returns a Format. The warehouse directory is created if missing.
func New(opts Options) (*Format, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Warehouse, 0o755); err != nil {
		return nil, fmt.Errorf("iceberg: creating warehouse: %w", err)
	}
	return &Format{opts: opts}, nil
}

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
	fs := newWriteOnceFS()
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
