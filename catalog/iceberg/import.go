package iceberg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Import implements catalog.TableFormat. It works in three phases, so that
// a bad file fails the import before anything is written:
//
//  1. resolve the sources and drop (append mode) those the table's lineage
//     already imported;
//  2. read every file's schema (a Parquet footer; a full syntax and type
//     pass over a CSV; an Arrow IPC file's schema and batch headers) and
//     check it against the table's (or, for a new table, the first
//     file's). A replace whose files do not fit the table's schema gives
//     the table the first file's schema instead (see reshape);
//  3. write the data — a Parquet file that already has the table's exact
//     Arrow schema (unpartitioned tables only) is copied byte for byte,
//     everything else streams through iceberg-go's writer — and commit
//     one snapshot into a new metadata file: an append, or an overwrite
//     that removes the table's files (replace) or the files of the
//     partitions the new rows fall in (overwrite-partitions).
//
// On error, files this import wrote are removed (nothing references them).
//
// Errors: ErrNotFound for a source that does not exist, a glob that matches
// no files or a directory without files of a known kind; ErrInvalidArgument
// for an unknown mode, an unsupported extension, an unreadable file (naming
// the file and, for CSV, the line), a schema conflict (naming the file, the
// column and both types), a bad --partitioned-by field, or
// --partitioned-by on an existing table other than by replace; ErrConflict
// when a file changes while it is read; ErrFailedPrecondition when
// overwrite-partitions meets data files of an older partition spec.
func (f *Format) Import(ctx context.Context, spec catalog.ImportSpec) (*catalog.ImportOutcome, error) {
	mode := spec.Mode
	if mode == "" {
		mode = catalog.ImportAppend
	}
	if !mode.Valid() {
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, catalog.ImportModeHint, "unknown import mode %q", mode)
	}
	if len(spec.Sources) == 0 && len(spec.Staged) == 0 {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "import into %s: no source files given", spec.Ident)
	}
	if spec.Current != nil && len(spec.PartitionBy) > 0 && mode != catalog.ImportReplace {
		return nil, catalog.PartitionByExistingError(spec.Ident)
	}
	files, err := f.resolveSources(ctx, spec.Sources)
	if err != nil {
		return nil, err
	}
	staged, err := stagedSources(spec.Staged)
	if err != nil {
		return nil, err
	}
	files = append(files, staged...)

	out := &catalog.ImportOutcome{}
	var (
		base *table.Table
		cat  *stagingCatalog
	)
	if spec.Current != nil {
		if base, cat, err = f.load(ctx, spec.Ident, *spec.Current); err != nil {
			return nil, err
		}
		if mode == catalog.ImportAppend {
			done, err := importedSources(base.Metadata())
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", spec.Ident, err)
			}
			kept := files[:0]
			for _, src := range files {
				if done[src.importedSource] {
					out.Skipped = append(out.Skipped, src.Path)
				} else {
					kept = append(kept, src)
				}
			}
			files = kept
		}
		if len(files) == 0 {
			out.Entry = *spec.Current
			return out, nil
		}
	}

	cleanup, err := fetchRemote(ctx, files)
	defer cleanup()
	if err != nil {
		return nil, err
	}

	// Phase 2: read every schema before writing anything.
	probes := make([]*probe, len(files))
	for i, src := range files {
		if probes[i], err = f.probeFile(ctx, src); err != nil {
			return nil, err
		}
	}
	if base == nil {
		md, err := f.newTable(spec, files[0].Path, probes[0].cols)
		if err != nil {
			return nil, err
		}
		cat = &stagingCatalog{fs: newWriteOnceFS(ctx, f.opts.Storage), base: md}
		base = cat.table(tableIdent(spec.Ident))
		out.Created = true
	} else if replaces(mode, base) {
		if base, err = reshape(cat, spec.Ident, files, probes, spec.PartitionBy); err != nil {
			return nil, err
		}
	}
	sc := base.Schema()
	for i, src := range files {
		if probes[i].colOf, err = matchColumns(src.Path, spec.Ident, sc, probes[i].cols); err != nil {
			if mode == catalog.ImportOverwritePartitions {
				return nil, errdefs.WithHint(errdefs.ErrInvalidArgument,
					"overwrite-partitions keeps the schema of a partitioned table; use --mode replace to replace the table with new columns", "%v", err)
			}
			return nil, err
		}
	}

	// Phase 3: write and commit.
	pr := newProgress(spec.Progress, files)
	entry, err := f.write(ctx, base, cat, mode, files, probes, spec.SnapshotProperties, pr)
	if err != nil {
		cat.fs.removeCreated()
		return nil, fmt.Errorf("import into %s: %w", spec.Ident, err)
	}
	out.Entry = entry
	out.Warnings = precisionWarnings(files, probes)
	for i, src := range files {
		out.Imported = append(out.Imported, src.Path)
		out.Rows += probes[i].rows
		out.Bytes += src.Size
	}
	return out, nil
}

// precisionWarnings names each column whose nanosecond timestamps or
// times the import cuts to microseconds (Iceberg v2's precision), with the
// first file that has it as such.
func precisionWarnings(files []sourceFile, probes []*probe) []string {
	var warnings []string
	seen := map[string]bool{}
	for i, src := range files {
		for _, c := range probes[i].cols {
			if c.allNull || seen[c.name] || !nanoseconds(c.arrow) {
				continue
			}
			seen[c.name] = true
			warnings = append(warnings, fmt.Sprintf("column %q of %s is %s: Iceberg keeps microseconds, so the nanoseconds were cut",
				c.name, src.Path, c.arrow))
		}
	}
	return warnings
}

// nanoseconds reports whether dt holds nanoseconds, which a table keeps
// only to the microsecond.
func nanoseconds(dt arrow.DataType) bool {
	switch t := dt.(type) {
	case *arrow.TimestampType:
		return t.Unit == arrow.Nanosecond
	case *arrow.Time64Type:
		return t.Unit == arrow.Nanosecond
	case *arrow.DictionaryType:
		return nanoseconds(t.ValueType)
	}
	return false
}

// replaces reports whether an import in mode removes every data file of
// the table: a replace, or an overwrite of partitions of an unpartitioned
// table.
func replaces(mode catalog.ImportMode, tbl *table.Table) bool {
	return mode == catalog.ImportReplace || mode == catalog.ImportOverwritePartitions && tbl.Spec().IsUnpartitioned()
}

// probe is what phase 2 learned about one source file.
type probe struct {
	cols []fileColumn
	rows int64
	// parquet is set for Parquet files.
	parquet *parquetProbe
	// colOf maps each table column to the file's column.
	colOf []int
}

func (f *Format) probeFile(ctx context.Context, src sourceFile) (*probe, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch src.kind {
	case kindParquet:
		p, err := probeParquet(src.file, src.fileSize)
		if err != nil {
			return nil, err
		}
		return &probe{cols: p.cols, rows: p.rows, parquet: p}, nil
	case kindIPC:
		p, err := probeIPC(ctx, src.file, src.fileSize, f.opts.Allocator)
		if err != nil {
			return nil, err
		}
		return &probe{cols: p.cols, rows: p.rows}, nil
	case kindCSVText:
		p, err := probeCSVText(ctx, src.file, src.Path, f.opts.Allocator)
		if err != nil {
			return nil, err
		}
		return &probe{cols: p.cols, rows: p.rows}, nil
	default:
		p, err := probeCSV(ctx, src.file, f.opts.maxCSVRecord)
		if err != nil {
			return nil, err
		}
		return &probe{cols: p.cols, rows: p.rows}, nil
	}
}

// newTable returns the metadata of a new table whose schema is that of the
// first source file: location <warehouse>/<namespace>/<table>-<uuid>.
func (f *Format) newTable(spec catalog.ImportSpec, first string, cols []fileColumn) (table.Metadata, error) {
	sc, err := tableSchemaFrom(first, cols)
	if err != nil {
		return nil, err
	}
	ps, err := partitionSpec(sc, spec.PartitionBy)
	if err != nil {
		return nil, err
	}
	id := uuid.New()
	loc := f.opts.Storage.URI(path.Join(string(spec.Ident.Namespace), spec.Ident.Name+"-"+id.String()))
	props := iceberg.Properties{
		// Old metadata files belong to other branches and commits too.
		table.MetadataDeleteAfterCommitEnabledKey: "false",
	}
	if f.opts.rowGroupRows > 0 {
		props[table.ParquetRowGroupLimitKey] = strconv.Itoa(f.opts.rowGroupRows)
	}
	md, err := table.NewMetadataWithUUID(sc, ps, table.UnsortedSortOrder, loc, props, id)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "creating table %s: %v", spec.Ident, err)
	}
	return md, nil
}

// write writes the data of files into base and commits one snapshot,
// returning the new table state.
func (f *Format) write(ctx context.Context, base *table.Table, cat *stagingCatalog, mode catalog.ImportMode,
	files []sourceFile, probes []*probe, extraProps map[string]string, pr *progress) (catalog.TableEntry, error) {
	sc := base.Schema()
	asc, err := arrowSchemaOf(sc)
	if err != nil {
		return catalog.TableEntry{}, err
	}
	var (
		added  []iceberg.DataFile
		stream []int // files that go through the writer
	)
	for i, src := range files {
		if !fastPath(base, asc, probes[i]) {
			stream = append(stream, i)
			continue
		}
		if probes[i].rows == 0 {
			continue
		}
		df, err := f.copyParquet(base, cat.fs, src, probes[i].parquet)
		if err != nil {
			return catalog.TableEntry{}, err
		}
		added = append(added, df)
		pr.read(probes[i].rows, src, probes[i], probes[i].rows)
	}
	if len(stream) > 0 {
		dfs, err := f.streamFiles(ctx, base, asc, files, probes, stream, pr)
		if err != nil {
			return catalog.TableEntry{}, err
		}
		added = append(added, dfs...)
	}

	// The summary records each file's size and mtime as read in phase 2;
	// make sure that is still what was imported.
	for _, src := range files {
		if err := checkUnchanged(src); err != nil {
			return catalog.TableEntry{}, err
		}
	}

	props := iceberg.Properties{}
	for k, v := range extraProps {
		props[k] = v
	}
	list := make([]importedSource, len(files))
	for i, src := range files {
		list[i] = src.importedSource
	}
	b, err := json.Marshal(list)
	if err != nil {
		return catalog.TableEntry{}, err
	}
	props[PropImportSources] = string(b)
	props[PropImportMode] = string(mode)

	txn := base.NewTransaction()
	var old []iceberg.DataFile
	fs, _ := cat.fsFunc(ctx)
	switch {
	case replaces(mode, base):
		old, err = liveDataFiles(fs, base.CurrentSnapshot())
	case mode == catalog.ImportOverwritePartitions:
		old, err = overwrittenFiles(fs, base.Metadata(), added)
	}
	if err != nil {
		return catalog.TableEntry{}, err
	}
	if len(old) > 0 {
		err = txn.ReplaceDataFilesWithDataFiles(ctx, old, added, props)
	} else {
		err = txn.AddDataFiles(ctx, added, props, table.WithoutDuplicateCheck())
	}
	if err != nil {
		return catalog.TableEntry{}, fmt.Errorf("staging snapshot: %w", err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		return catalog.TableEntry{}, fmt.Errorf("committing snapshot: %w", err)
	}
	if !cat.committed {
		// Nothing to commit (every file was empty and nothing was
		// removed). A new table still needs its first metadata file, a
		// reshaped one its new schema or spec; any other stays as it was.
		switch {
		case cat.baseLoc == "":
			loc, err := cat.writeMetadata(cat.base, 1)
			if err != nil {
				return catalog.TableEntry{}, err
			}
			cat.baseLoc = loc
		case len(cat.staged) > 0:
			if _, _, err := cat.CommitTable(ctx, nil, nil, nil); err != nil {
				return catalog.TableEntry{}, err
			}
		}
	}
	return entryOf(cat.base, cat.baseLoc), nil
}

// fastPath reports whether a source can be added to the table as is: a
// Parquet file whose Arrow schema is exactly the table's (same columns in the
// same order, same types, no foreign field ids) in an unpartitioned table.
func fastPath(base *table.Table, asc *arrow.Schema, p *probe) bool {
	if p.parquet == nil || !base.Spec().IsUnpartitioned() || len(p.cols) != asc.NumFields() {
		return false
	}
	fields := base.Schema().Fields()
	for i, c := range p.cols {
		if p.colOf[i] != i || c.arrow == nil || !arrow.TypeEqual(c.arrow, asc.Field(i).Type) {
			return false
		}
		if c.fieldID >= 0 && c.fieldID != fields[i].ID {
			return false
		}
	}
	return true
}

// copyParquet copies a Parquet file byte for byte into the table's data
// directory and describes it from the footer already read.
func (f *Format) copyParquet(base *table.Table, fs *writeOnceFS, src sourceFile, p *parquetProbe) (_ iceberg.DataFile, err error) {
	dst := strings.TrimSuffix(base.Location(), "/") + "/data/" + uuid.NewString() + ".parquet"
	n, err := copyFile(fs, src.file, dst)
	if err != nil {
		return nil, fmt.Errorf("copying %s: %w", src.Path, err)
	}
	if n != src.fileSize {
		return nil, errdefs.WithHint(errdefs.ErrConflict, "import it again once it is complete",
			"file %s changed while it was imported", src.Path)
	}
	// The footer is the file's: what iceberg-go cannot describe in it (a
	// row group without its column chunks) is a corrupt file.
	defer func() {
		if r := recover(); r != nil {
			err = corruptParquet(src.Path, fmt.Errorf("%v", r))
		}
	}()
	df, err := table.DataFileFromMetadata(table.DataFileArgs{
		Schema:        base.Schema(),
		Spec:          base.Spec(),
		Format:        iceberg.ParquetFile,
		Metadata:      p.footer,
		FilePath:      dst,
		FileSize:      n,
		Content:       iceberg.EntryContentData,
		Properties:    base.Properties(),
		FormatVersion: base.Metadata().Version(),
	})
	if err != nil {
		return nil, corruptParquet(src.Path, err)
	}
	return df, nil
}

// checkUnchanged fails when src no longer has the size and modification
// time it had when the import started.
func checkUnchanged(src sourceFile) error {
	info, err := os.Stat(src.file)
	if err != nil {
		return fmt.Errorf("file %s: %w", src.Path, err)
	}
	if info.Size() != src.fileSize || info.ModTime().UnixNano() != src.fileMtime {
		return errdefs.WithHint(errdefs.ErrConflict, "import it again once it is complete",
			"file %s changed while it was imported", src.Path)
	}
	return nil
}

// copyFile copies src to the new file dst (in-kernel where possible).
func copyFile(fs *writeOnceFS, src, dst string) (n int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := fs.Create(dst)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	return io.Copy(out, in)
}

// streamFiles writes the files at indexes idx through iceberg-go's writer
// (partitioning, casting to the table's types) and returns the data files.
func (f *Format) streamFiles(ctx context.Context, base *table.Table, asc *arrow.Schema,
	files []sourceFile, probes []*probe, idx []int, pr *progress) ([]iceberg.DataFile, error) {
	var (
		mu     sync.Mutex
		srcErr error // the first error of our own reading, already classified
	)
	stopped := errors.New("stopped")
	records := func(yield func(arrow.RecordBatch, error) bool) {
		var i int
		var fileRows int64
		emit := func(rec arrow.RecordBatch) error {
			n := rec.NumRows()
			if !yield(rec, nil) {
				return stopped
			}
			fileRows += n
			pr.read(n, files[i], probes[i], fileRows)
			return nil
		}
		for _, i = range idx {
			fileRows = 0
			var err error
			switch files[i].kind {
			case kindParquet:
				err = parquetBatches(ctx, f.opts.Allocator, files[i].file, asc, probes[i].colOf, f.opts.BatchRows, emit)
			case kindIPC:
				err = ipcBatches(ctx, f.opts.Allocator, files[i].file, files[i].fileSize, asc, probes[i].colOf, f.opts.BatchRows, emit)
			case kindCSVText:
				err = csvTextBatches(ctx, f.opts.Allocator, files[i].file, files[i].Path, asc, probes[i].colOf, f.opts.BatchRows, emit)
			default:
				err = csvBatches(ctx, f.opts.Allocator, files[i].file, f.opts.maxCSVRecord, asc, probes[i].colOf, f.opts.BatchRows, emit)
			}
			if err == stopped {
				return
			}
			if err != nil {
				mu.Lock()
				srcErr = err
				mu.Unlock()
				yield(nil, err)
				return
			}
		}
	}
	var out []iceberg.DataFile
	for df, err := range table.WriteRecords(ctx, base, asc, records,
		table.WithTargetFileSize(f.opts.TargetFileSize),
		// Bound the batches queued for the Parquet writers (default 64).
		table.WithRecordBatchBufferSize(4)) {
		if err != nil {
			mu.Lock()
			defer mu.Unlock()
			if srcErr != nil {
				return nil, srcErr
			}
			return nil, fmt.Errorf("writing data files: %w", err)
		}
		out = append(out, df)
	}
	mu.Lock()
	defer mu.Unlock()
	if srcErr != nil {
		return nil, srcErr
	}
	return out, nil
}
