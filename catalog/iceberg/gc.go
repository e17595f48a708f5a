package iceberg

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
)

var _ catalog.TableFiles = (*Format)(nil)

// ReferencedFiles implements catalog.TableFiles for Iceberg table states.
// From each state's metadata file it follows:
//
//   - the snapshots kept: every one with a zero since; otherwise the
//     current one, those Iceberg refs name, and those made at or after
//     since. Of each, the manifest list, the manifests, and the data and
//     delete files their live entries (added or existing) name; a file a
//     manifest lists as deleted belongs to the snapshot before, kept or
//     not on its own;
//   - the statistics and partition statistics files;
//   - the table's folder (its key ending in '/');
//   - the earlier metadata files of its metadata log (every one with a
//     zero since, else those written at or after since), each followed as
//     a state of its own.
//
// Manifest lists and manifests shared by many states are read once.
//
// When a file it reads (a metadata file, manifest list or manifest) is
// missing (deleted behind the catalog's back), it is returned in missing,
// by key, and what it would have referenced is unknown: every file under
// that table's location is reported, so that nothing it may still need
// goes. An earlier metadata file of a metadata log that is gone was
// collected, and is neither reported nor missing: every other key reported
// names a file the states need, so the collector can tell the missing data
// files from its listing.
func (f *Format) ReferencedFiles(ctx context.Context, states []catalog.TableEntry, since time.Time, fn func(key string)) ([]string, error) {
	w := &refWalker{f: f, fs: f.readIO(ctx), since: since, fn: fn, seen: map[string]bool{}, kept: map[string]bool{}}
	for _, e := range states {
		if err := w.metadata(ctx, e.MetadataLocation, true); err != nil {
			return w.missing, err
		}
	}
	return w.missing, nil
}

// readIO is the file system the collector reads table files through.
func (f *Format) readIO(ctx context.Context) iceio.IO { return newWriteOnceFS(ctx, f.opts.Storage) }

// refWalker walks table metadata, reporting each file once.
type refWalker struct {
	f       *Format
	fs      iceio.IO
	since   time.Time
	fn      func(string)
	seen    map[string]bool // locations reported (and, for metadata and manifests, read)
	kept    map[string]bool // table locations whose every file was reported
	missing []string
}

// report passes loc's key to fn once; it returns false if loc was
// reported before.
func (w *refWalker) report(loc string) bool {
	if w.seen[loc] {
		return false
	}
	w.seen[loc] = true
	w.emit(loc)
	return true
}

// emit passes loc's key to fn, if loc is in the warehouse.
func (w *refWalker) emit(loc string) {
	if key, ok := w.f.warehouseKey(loc); ok {
		w.fn(key)
	}
}

// notThere records a missing file of the table at tableLoc, whose files
// are then all reported, or returns err if it is another error.
func (w *refWalker) notThere(ctx context.Context, tableLoc, loc string, err error) error {
	if !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", loc, err)
	}
	if key, ok := w.f.warehouseKey(loc); ok {
		w.missing = append(w.missing, key)
	} else {
		w.missing = append(w.missing, loc)
	}
	prefix, ok := w.f.warehouseKey(tableLoc)
	if !ok || w.kept[prefix] {
		return nil
	}
	w.kept[prefix] = true
	return w.f.Objects().List(ctx, prefix+"/", func(o catalog.ObjectInfo) error {
		w.fn(o.Key)
		return nil
	})
}

// metadata follows one metadata file. required is false for files of a
// metadata log: those may be gone (collected as history past retention).
func (w *refWalker) metadata(ctx context.Context, loc string, required bool) error {
	if loc == "" || w.seen[loc] {
		return nil
	}
	w.seen[loc] = true
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := w.fs.(iceio.ReadFileIO).ReadFile(loc)
	if err != nil {
		if !required && errors.Is(err, iofs.ErrNotExist) {
			return nil // collected with the history past retention
		}
		return w.notThere(ctx, tableOfMetadata(loc), loc, err)
	}
	w.emit(loc)
	md, err := table.ParseMetadataBytes(b)
	if err != nil {
		return fmt.Errorf("table metadata %s: %w", loc, err)
	}
	if key, ok := w.f.warehouseKey(md.Location()); ok && !w.seen[md.Location()+"/"] {
		w.seen[md.Location()+"/"] = true
		w.fn(key + "/")
	}
	keep := map[int64]bool{}
	if s := md.CurrentSnapshot(); s != nil {
		keep[s.SnapshotID] = true
	}
	for _, ref := range md.Refs() {
		keep[ref.SnapshotID] = true
	}
	for _, s := range md.Snapshots() {
		if w.since.IsZero() || keep[s.SnapshotID] || !time.UnixMilli(s.TimestampMs).Before(w.since) {
			if err := w.snapshot(ctx, md.Location(), s); err != nil {
				return err
			}
		}
	}
	for st := range md.Statistics() {
		w.report(st.StatisticsPath)
	}
	for st := range md.PartitionStatistics() {
		w.report(st.StatisticsPath)
	}
	for prev := range md.PreviousFiles() {
		if w.since.IsZero() || !time.UnixMilli(prev.TimestampMs).Before(w.since) {
			if err := w.metadata(ctx, prev.MetadataFile, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// tableOfMetadata returns the table location of a metadata file at
// <table location>/metadata/<file>. Not path.Dir, which would clean the
// "//" of a URI such as s3://bucket/... away.
func tableOfMetadata(loc string) string {
	for range 2 {
		if i := strings.LastIndexByte(loc, '/'); i >= 0 {
			loc = loc[:i]
		}
	}
	return loc
}

// snapshot follows a snapshot's manifest list and manifests.
func (w *refWalker) snapshot(ctx context.Context, tableLoc string, s table.Snapshot) error {
	if s.ManifestList != "" && !w.report(s.ManifestList) {
		return nil
	}
	manifests, err := s.Manifests(w.fs)
	if err != nil {
		return w.notThere(ctx, tableLoc, s.ManifestList, err)
	}
	for _, m := range manifests {
		if !w.report(m.FilePath()) {
			continue
		}
		entries, err := m.FetchEntries(w.fs, true)
		if err != nil {
			if err := w.notThere(ctx, tableLoc, m.FilePath(), err); err != nil {
				return err
			}
			continue
		}
		for _, e := range entries {
			if e.Status() != iceberg.EntryStatusDELETED {
				w.report(e.DataFile().FilePath())
			}
		}
	}
	return nil
}

// warehouseKey returns the key of a location in this Format's warehouse
// (relative to its root, '/'-separated), and false for a location
// outside it.
func (f *Format) warehouseKey(loc string) (string, bool) {
	k, ok := f.opts.Storage.Key(loc)
	if !ok || k == "" {
		return "", false
	}
	return k, true
}

// Objects returns the files of this Format's warehouse as the garbage
// collector lists and deletes them. A local warehouse is listed with the
// temporary files of writes that never finished, so that they go too.
func (f *Format) Objects() catalog.Objects {
	if l, ok := f.opts.Storage.(*warehouse.Local); ok {
		return &DirObjects{Root: l.Dir()}
	}
	return f.opts.Storage
}
