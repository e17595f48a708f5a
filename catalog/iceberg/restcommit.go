package iceberg

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"path"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// This file is what the Iceberg REST catalog (catalog/restcatalog) asks of
// the format: reading a table state's metadata file, applying a client's
// requirements and updates as a new metadata file, and creating and
// registering tables. Like every write here, none of it is visible until
// the lakehouse catalog commits the returned entry.

// ReadMetadata returns the content of the metadata file at loc, a location
// in the warehouse. Errors: ErrNotFound when there is no such file,
// ErrInvalidArgument for a remote location outside the warehouse.
func (f *Format) ReadMetadata(ctx context.Context, loc string) ([]byte, error) {
	b, err := newWriteOnceFS(ctx, f.opts.Storage).ReadFile(loc)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, errdefs.New(errdefs.ErrNotFound, "metadata file %s does not exist", loc)
	}
	if err != nil {
		return nil, fmt.Errorf("reading metadata file %s: %w", loc, err)
	}
	return b, nil
}

// CommitUpdates checks reqs against the table state current (nil for a
// table being created by the commit, as after a staged create), applies
// updates and writes the result as the next metadata file, returning its
// catalog entry and metadata (current itself when there are no updates).
//
// Errors: ErrConflict when a requirement fails, saying which;
// ErrInvalidArgument when the updates do not apply (an unknown schema id,
// a location outside the warehouse, a move of an existing table, turning
// on delete-after-commit).
func (f *Format) CommitUpdates(ctx context.Context, id catalog.TableIdent, current *catalog.TableEntry,
	reqs []table.Requirement, updates []table.Update) (catalog.TableEntry, table.Metadata, error) {
	if current == nil {
		return f.commitCreate(ctx, id, reqs, updates)
	}
	_, cat, err := f.load(ctx, id, *current)
	if err != nil {
		return catalog.TableEntry{}, nil, err
	}
	for _, r := range reqs {
		if err := r.Validate(cat.base); err != nil {
			return catalog.TableEntry{}, nil, requirementFailed(id, err)
		}
	}
	if len(updates) == 0 {
		// Nothing changes: the state stays, and no file is written.
		return *current, cat.base, nil
	}
	md, loc, err := cat.CommitTable(ctx, tableIdent(id), nil, updates)
	if err != nil {
		return catalog.TableEntry{}, nil, updateError(id, err)
	}
	return entryOf(md, loc), md, nil
}

// requirementFailed is the error of a requirement the table state does not
// meet.
func requirementFailed(id catalog.TableIdent, err error) error {
	return errdefs.WithHint(errdefs.ErrConflict, "load the table again and retry the commit",
		"table %s: requirement failed: %v", id, err)
}

// commitCreate is CommitUpdates of a table that does not exist yet: the
// updates build its metadata from nothing.
func (f *Format) commitCreate(ctx context.Context, id catalog.TableIdent,
	reqs []table.Requirement, updates []table.Update) (catalog.TableEntry, table.Metadata, error) {
	for _, r := range reqs {
		if err := r.Validate(nil); err != nil {
			return catalog.TableEntry{}, nil, requirementFailed(id, err)
		}
	}
	empty, err := table.NewMetadata(iceberg.NewSchema(0), nil, table.UnsortedSortOrder, "", nil)
	if err != nil {
		return catalog.TableEntry{}, nil, fmt.Errorf("table %s: %w", id, err)
	}
	md, err := table.UpdateTableMetadata(empty, updates, "")
	if err != nil {
		return catalog.TableEntry{}, nil, errdefs.New(errdefs.ErrInvalidArgument, "creating table %s: %v", id, err)
	}
	return f.writeFirst(ctx, id, md)
}

// NewTableMetadata returns the metadata of a new table, at a new location
// <warehouse>/<namespace>/<table>-<uuid>, without writing anything (a
// staged create). spec and order may be nil (unpartitioned, unsorted);
// their source ids refer to sc's field ids. Errors: ErrInvalidArgument for
// a schema, spec or order that do not fit together.
func (f *Format) NewTableMetadata(id catalog.TableIdent, sc *iceberg.Schema, spec *iceberg.PartitionSpec,
	order *table.SortOrder, properties iceberg.Properties) (table.Metadata, error) {
	if sc == nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "creating table %s: the request has no schema", id)
	}
	ps := iceberg.UnpartitionedSpec
	if spec != nil {
		ps = spec
	}
	so := table.UnsortedSortOrder
	if order != nil {
		so = *order
	}
	props := iceberg.Properties{}
	for k, v := range properties {
		props[k] = v
	}
	// Old metadata files belong to other branches and commits too.
	props[table.MetadataDeleteAfterCommitEnabledKey] = "false"
	u := uuid.New()
	loc := f.opts.Storage.URI(path.Join(string(id.Namespace), id.Name+"-"+u.String()))
	md, err := table.NewMetadataWithUUID(sc, ps, so, loc, props, u)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "creating table %s: %v", id, err)
	}
	return md, nil
}

// CreateTable writes md (from NewTableMetadata) as the first metadata file
// of a new table and returns its entry.
func (f *Format) CreateTable(ctx context.Context, id catalog.TableIdent, md table.Metadata) (catalog.TableEntry, table.Metadata, error) {
	return f.writeFirst(ctx, id, md)
}

// writeFirst writes the first metadata file of a new table, which must lie
// in the warehouse.
func (f *Format) writeFirst(ctx context.Context, id catalog.TableIdent, md table.Metadata) (catalog.TableEntry, table.Metadata, error) {
	if _, ok := f.opts.Storage.Key(md.Location()); !ok || md.Location() == "" {
		return catalog.TableEntry{}, nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "leave the location out: the server chooses it",
			"creating table %s: location %q is not in the warehouse %s", id, md.Location(), f.opts.Storage.Root())
	}
	if md.Properties().GetBool(table.MetadataDeleteAfterCommitEnabledKey, false) {
		return catalog.TableEntry{}, nil, errdefs.New(errdefs.ErrInvalidArgument,
			"creating table %s: table property %s must stay false: other branches reference old metadata files",
			id, table.MetadataDeleteAfterCommitEnabledKey)
	}
	cat := &stagingCatalog{fs: newWriteOnceFS(ctx, f.opts.Storage), base: md}
	out, loc, err := cat.CommitTable(ctx, tableIdent(id), nil, nil)
	if err != nil {
		return catalog.TableEntry{}, nil, updateError(id, err)
	}
	return entryOf(out, loc), out, nil
}

// RegisterTable returns the entry of an existing metadata file in the
// warehouse, for a table registered under a name. Errors: ErrNotFound for
// a missing file, ErrInvalidArgument for a file outside the warehouse or
// one that is not table metadata.
func (f *Format) RegisterTable(ctx context.Context, id catalog.TableIdent, loc string) (catalog.TableEntry, table.Metadata, error) {
	if _, ok := f.opts.Storage.Key(loc); !ok || !strings.HasSuffix(loc, ".metadata.json") {
		return catalog.TableEntry{}, nil, errdefs.WithHint(errdefs.ErrInvalidArgument,
			"give the location of a .metadata.json file under the warehouse",
			"registering table %s: %q is not a metadata file in the warehouse %s", id, loc, f.opts.Storage.Root())
	}
	b, err := f.ReadMetadata(ctx, loc)
	if err != nil {
		return catalog.TableEntry{}, nil, err
	}
	md, err := table.ParseMetadataBytes(b)
	if err != nil {
		return catalog.TableEntry{}, nil, errdefs.New(errdefs.ErrInvalidArgument, "registering table %s: %s is not table metadata: %v", id, loc, err)
	}
	return entryOf(md, loc), md, nil
}

// updateError classes an error of applying updates and writing the
// result: the store's errors keep their class, the rest are the updates'.
func updateError(id catalog.TableIdent, err error) error {
	if errdefs.Class(err) != errdefs.ErrInternal {
		return fmt.Errorf("table %s: %w", id, err)
	}
	return errdefs.New(errdefs.ErrInvalidArgument, "table %s: %v", id, err)
}
