package iceberg

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
)

// MergeAppends implements catalog.TableFormat. Both sides qualify when they
// are the same table as base and, walking parent snapshots from each side's
// current snapshot, reach base's current snapshot through "append"
// snapshots only, with base's schema and partition spec. The merged state is
// ours plus one append snapshot holding the data files theirs added since
// base (the files are referenced, not copied). If ours is base, the result
// is theirs; if theirs is base (or ours), it is ours.
//
// ok is false, with a nil error, when either side did anything else since
// base. Errors are for unreadable states (ErrNotFound for a missing metadata
// file).
func (f *Format) MergeAppends(ctx context.Context, id catalog.TableIdent, base, ours, theirs catalog.TableEntry) (catalog.TableEntry, bool, error) {
	switch {
	case ours.MetadataLocation == theirs.MetadataLocation, theirs.MetadataLocation == base.MetadataLocation:
		return ours, true, nil
	case ours.MetadataLocation == base.MetadataLocation:
		return theirs, true, nil
	}
	bt, _, err := f.load(ctx, id, base)
	if err != nil {
		return catalog.TableEntry{}, false, err
	}
	ot, cat, err := f.load(ctx, id, ours)
	if err != nil {
		return catalog.TableEntry{}, false, err
	}
	tt, _, err := f.load(ctx, id, theirs)
	if err != nil {
		return catalog.TableEntry{}, false, err
	}
	bm := bt.Metadata()
	if _, ok := appendsSince(bm, ot.Metadata()); !ok {
		return catalog.TableEntry{}, false, nil
	}
	walk, ok := appendsSince(bm, tt.Metadata())
	if !ok {
		return catalog.TableEntry{}, false, nil
	}

	// The files theirs added since base: live entries of its current
	// snapshot whose snapshot id is on the walk.
	added := map[int64]bool{}
	var sources []importedSource
	for _, s := range walk {
		added[s.SnapshotID] = true
		if v, ok := s.Summary.Properties[PropImportSources]; ok {
			var list []importedSource
			if json.Unmarshal([]byte(v), &list) == nil {
				sources = append(sources, list...)
			}
		}
	}
	var files []iceberg.DataFile
	head := tt.Metadata().CurrentSnapshot()
	manifests, err := head.Manifests(cat.fs)
	if err != nil {
		return catalog.TableEntry{}, false, fmt.Errorf("table %s: reading manifest list of snapshot %d: %w", id, head.SnapshotID, err)
	}
	for _, m := range manifests {
		// A manifest written before base holds no file added since.
		if m.ManifestContent() != iceberg.ManifestContentData || !added[m.SnapshotID()] {
			continue
		}
		for e, err := range m.Entries(cat.fs, true) {
			if err != nil {
				return catalog.TableEntry{}, false, fmt.Errorf("table %s: reading manifest %s: %w", id, m.FilePath(), err)
			}
			if added[e.SnapshotID()] && e.DataFile().ContentType() == iceberg.EntryContentData {
				files = append(files, e.DataFile())
			}
		}
	}
	if len(files) == 0 {
		return ours, true, nil
	}

	props := iceberg.Properties{PropMergedFrom: strconv.FormatInt(head.SnapshotID, 10)}
	if len(sources) > 0 {
		// Keep "skip files already imported" working across the merge:
		// theirs' imports are now part of ours' lineage.
		b, err := json.Marshal(sources)
		if err != nil {
			return catalog.TableEntry{}, false, err
		}
		props[PropImportSources] = string(b)
		props[PropImportMode] = string(catalog.ImportAppend)
	}
	txn := ot.NewTransaction()
	if err := txn.AddDataFiles(ctx, files, props, table.WithoutDuplicateCheck()); err != nil {
		return catalog.TableEntry{}, false, fmt.Errorf("table %s: staging merge snapshot: %w", id, err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		cat.fs.removeCreated(nil)
		return catalog.TableEntry{}, false, fmt.Errorf("table %s: committing merge snapshot: %w", id, err)
	}
	return entryOf(cat.base, cat.baseLoc), true, nil
}

// appendsSince walks side's snapshots from its current one back to base's
// current snapshot. ok is true when the walk gets there through append
// snapshots only and side has base's uuid, schema and default spec; the walk
// (newest first, base's snapshot excluded) is returned.
func appendsSince(base, side table.Metadata) ([]*table.Snapshot, bool) {
	if base.TableUUID() != side.TableUUID() ||
		base.CurrentSchema().ID != side.CurrentSchema().ID ||
		base.DefaultPartitionSpec() != side.DefaultPartitionSpec() {
		return nil, false
	}
	var stop int64 = -1
	if s := base.CurrentSnapshot(); s != nil {
		stop = s.SnapshotID
	}
	var walk []*table.Snapshot
	s := side.CurrentSnapshot()
	for s != nil && s.SnapshotID != stop {
		if s.Summary == nil || s.Summary.Operation != table.OpAppend {
			return nil, false
		}
		walk = append(walk, s)
		if s.ParentSnapshotID == nil {
			s = nil
			break
		}
		s = side.SnapshotByID(*s.ParentSnapshotID)
	}
	// Reached base's snapshot, or the root when base had none.
	if (s == nil) != (stop == -1) {
		return nil, false
	}
	return walk, true
}
