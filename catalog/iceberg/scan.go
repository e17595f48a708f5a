package iceberg

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// ScanTable is a table state opened for reading: its schema and current
// snapshot, ready to plan scans. It reads metadata and manifests only.
type ScanTable struct {
	id    catalog.TableIdent
	tbl   *table.Table
	fs    *writeOnceFS
	fetch Fetcher // nil: data files are local paths
}

// OpenScan opens the table state e of a local table for scan planning. It
// returns ErrNotFound when the metadata file does not exist. It needs no
// Format: reads go straight to the local paths the metadata names. A table
// in a remote warehouse is opened with Format.OpenScan.
func OpenScan(ctx context.Context, id catalog.TableIdent, e catalog.TableEntry) (*ScanTable, error) {
	return (&Format{}).openScan(ctx, id, e)
}

func (f *Format) openScan(ctx context.Context, id catalog.TableIdent, e catalog.TableEntry) (*ScanTable, error) {
	tbl, cat, err := f.load(ctx, id, e)
	if err != nil {
		return nil, err
	}
	return &ScanTable{id: id, tbl: tbl, fs: cat.fs, fetch: f.opts.Fetcher}, nil
}

// Schema is the table's current schema.
func (t *ScanTable) Schema() *iceberg.Schema { return t.tbl.Schema() }

// SchemaCount is the number of schemas the table has had; more than one
// means older data files may have other column types or lack columns.
func (t *ScanTable) SchemaCount() int { return len(t.tbl.Metadata().Schemas()) }

// SnapshotID is the current snapshot, 0 for a table without one.
func (t *ScanTable) SnapshotID() int64 {
	if s := t.tbl.CurrentSnapshot(); s != nil {
		return s.SnapshotID
	}
	return 0
}

// ScanOptions narrow a scan plan.
type ScanOptions struct {
	// Columns the reader needs; nil means all.
	Columns []string
	// Filter is a row filter in iceberg-go's expression language; nil
	// means every row. Files whose partition values or column statistics
	// prove that no row matches are pruned. Rows of kept files are not
	// filtered: the reader applies its own predicates.
	Filter iceberg.BooleanExpression
	// RowGroups is the same filter as predicates (those Filter was
	// translated from), by which a Fetcher that reads only what a scan
	// needs (a StatsFetcher) leaves out the row groups of kept files whose
	// statistics rule it out; nil keeps them all.
	RowGroups [][]catalog.Predicate
}

// ScanPlan is the outcome of planning: the data files to read.
type ScanPlan struct {
	SnapshotID int64
	// Files are the local paths of the kept data files (for a remote
	// warehouse, the Fetcher's copies), sorted.
	Files []string
	// Records is the row count of the kept files.
	Records int64
	// TotalFiles is the number of live data files of the snapshot, so
	// TotalFiles - len(Files) were pruned.
	TotalFiles int
	// Fetch is what fetching the files from a remote warehouse cost, nil
	// when the Fetcher does not say (a local warehouse).
	Fetch *scancache.FetchStats
}

// PlanFiles plans a scan of the current snapshot with iceberg-go's planner
// (manifest, partition and metrics evaluation). Errors:
// ErrFailedPrecondition when a kept file has row-level deletes (which this
// reader does not apply) or is not Parquet; ErrInvalidArgument when the
// filter does not bind to the schema.
func (t *ScanTable) PlanFiles(ctx context.Context, opts ScanOptions) (*ScanPlan, error) {
	snap := t.tbl.CurrentSnapshot()
	plan := &ScanPlan{Files: []string{}}
	if snap == nil {
		return plan, nil
	}
	plan.SnapshotID = snap.SnapshotID
	all, err := liveDataFiles(t.fs, snap)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.id, err)
	}
	plan.TotalFiles = len(all)

	var scanOpts []table.ScanOption
	if opts.Filter != nil {
		scanOpts = append(scanOpts, table.WithRowFilter(opts.Filter))
	}
	if opts.Columns != nil {
		scanOpts = append(scanOpts, table.WithSelectedFields(opts.Columns...))
	}
	scanOpts = append(scanOpts, table.WithCaseSensitive(false))
	tasks, err := t.tbl.Scan(scanOpts...).PlanFiles(ctx)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "table %s: planning the scan: %v", t.id, err)
	}
	for _, task := range tasks {
		if len(task.DeleteFiles)+len(task.EqualityDeleteFiles)+len(task.DeletionVectorFiles) > 0 {
			return nil, errdefs.New(errdefs.ErrFailedPrecondition,
				"table %s has row-level deletes, which queries cannot read yet", t.id)
		}
		if task.File.FileFormat() != iceberg.ParquetFile {
			return nil, errdefs.New(errdefs.ErrFailedPrecondition,
				"table %s has a %s data file (%s); queries read Parquet only", t.id, task.File.FileFormat(), task.File.FilePath())
		}
		plan.Files = append(plan.Files, task.File.FilePath())
		plan.Records += task.File.Count()
	}
	sort.Strings(plan.Files)
	plan.Files = dedupSorted(plan.Files)
	rgs := newRowGroupFilter(t.Schema(), opts.RowGroups, t.SchemaCount() == 1)
	for i, loc := range plan.Files {
		if plan.Files[i], err = t.localFile(ctx, loc, opts.Columns, rgs, plan); err != nil {
			return nil, fmt.Errorf("table %s: data file %s: %w", t.id, loc, err)
		}
	}
	return plan, nil
}

// localFile is a local path with the content of the data file at loc
// that a scan of columns needs (without the row groups rgs rules out);
// what fetching it cost is added to plan.Fetch.
func (t *ScanTable) localFile(ctx context.Context, loc string, columns []string, rgs *rowGroupFilter, plan *ScanPlan) (string, error) {
	key, local, err := t.fs.key(loc)
	if err != nil {
		return "", err
	}
	if local != "" || t.fetch == nil {
		return localName(loc), nil
	}
	sf, ok := t.fetch.(StatsFetcher)
	if !ok {
		if isPlanOnly(ctx) {
			return loc, nil // a plan only names the files
		}
		return t.fetch.Materialize(ctx, key, columns)
	}
	scan := scancache.Scan{Columns: columns}
	if rgs != nil {
		scan.RowGroups = rgs.keep
	}
	if columns != nil && t.SchemaCount() == 1 {
		pos := map[string]int{}
		for i, f := range t.Schema().Fields() {
			pos[strings.ToLower(f.Name)] = i
		}
		scan.Fields = make([]int, 0, len(columns))
		for _, c := range columns {
			if i, ok := pos[strings.ToLower(c)]; ok {
				scan.Fields = append(scan.Fields, i)
			}
		}
	}
	p, st, err := sf.MaterializeScan(ctx, key, scan)
	if err != nil {
		return "", err
	}
	if plan.Fetch == nil {
		plan.Fetch = &scancache.FetchStats{Hit: true}
	}
	plan.Fetch.Add(st)
	return p, nil
}

// dedupSorted drops repeated paths (a file split into several tasks).
func dedupSorted(s []string) []string {
	out := s[:0]
	for i, p := range s {
		if i == 0 || p != s[i-1] {
			out = append(out, p)
		}
	}
	return out
}
