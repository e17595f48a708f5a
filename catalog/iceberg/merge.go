package iceberg

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
)

// MergeAppends implements catalog.TableFormat by comparing the files of the
// three states' current snapshots (not their snapshot histories, so merging
// the same two branches again works: after a merge, one side's lineage holds
// a merge snapshot and no longer passes through the other side's snapshots).
//
// Both sides qualify when they are the same table as base (same table uuid),
// have base's current schema and default partition spec, hold every data
// file of base (nothing deleted or rewritten) and hold no delete file
// (position or equality deletes, deletion vectors) that base does not. A
// state without a snapshot holds no files.
//
// The merged state is ours plus one append snapshot adding the data files of
// theirs that ours does not have (matched by path; the DataFile entries are
// taken from theirs' manifests, no file is copied or rewritten). It records
// the files theirs imported, so a later import skips them. When ours already
// has all of theirs' data files, the result is ours unchanged. If ours is
// base, the result is theirs; if theirs is base (or ours), it is ours.
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
	bm, om, tm := bt.Metadata(), ot.Metadata(), tt.Metadata()
	if !sameShape(bm, om) || !sameShape(bm, tm) {
		return catalog.TableEntry{}, false, nil
	}
	bf, err := snapshotFiles(cat.fs, bm.CurrentSnapshot())
	if err != nil {
		return catalog.TableEntry{}, false, fmt.Errorf("table %s: %w", id, err)
	}
	of, err := snapshotFiles(cat.fs, om.CurrentSnapshot())
	if err != nil {
		return catalog.TableEntry{}, false, fmt.Errorf("table %s: %w", id, err)
	}
	tf, err := snapshotFiles(cat.fs, tm.CurrentSnapshot())
	if err != nil {
		return catalog.TableEntry{}, false, fmt.Errorf("table %s: %w", id, err)
	}
	if !bf.appendedBy(of) || !bf.appendedBy(tf) {
		return catalog.TableEntry{}, false, nil
	}

	// The data files theirs has and ours does not.
	var files []iceberg.DataFile
	for _, df := range tf.data {
		if _, ok := of.paths[df.FilePath()]; ok {
			continue
		}
		if om.PartitionSpecByID(int(df.SpecID())) == nil {
			// Written with a partition spec ours does not know.
			return catalog.TableEntry{}, false, nil
		}
		files = append(files, df)
	}
	if len(files) == 0 {
		return ours, true, nil
	}

	// Keep "skip files already imported" working across the merge: the
	// files theirs imported are now part of ours' lineage.
	theirSources, err := importedSources(tm)
	if err != nil {
		return catalog.TableEntry{}, false, fmt.Errorf("table %s: %w", id, err)
	}
	ourSources, err := importedSources(om)
	if err != nil {
		return catalog.TableEntry{}, false, fmt.Errorf("table %s: %w", id, err)
	}
	var sources []importedSource
	for src := range theirSources {
		if !ourSources[src] {
			sources = append(sources, src)
		}
	}
	slices.SortFunc(sources, func(a, b importedSource) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.MtimeNs, b.MtimeNs), cmp.Compare(a.Size, b.Size))
	})

	props := iceberg.Properties{PropMergedFrom: strconv.FormatInt(tm.CurrentSnapshot().SnapshotID, 10)}
	if len(sources) > 0 {
		b, err := json.Marshal(sources)
		if err != nil {
			return catalog.TableEntry{}, false, err
		}
		props[PropImportSources] = string(b)
		props[PropImportMode] = string(catalog.ImportAppend)
	}
	txn := ot.NewTransaction()
	if err := txn.AddDataFiles(ctx, files, props, table.WithoutDuplicateCheck()); err != nil {
		cat.fs.removeCreated()
		return catalog.TableEntry{}, false, fmt.Errorf("table %s: staging merge snapshot: %w", id, err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		cat.fs.removeCreated()
		return catalog.TableEntry{}, false, fmt.Errorf("table %s: committing merge snapshot: %w", id, err)
	}
	return entryOf(cat.base, cat.baseLoc), true, nil
}

// sameShape reports whether side is the same table as base with base's
// current schema and default partition spec.
func sameShape(base, side table.Metadata) bool {
	return base.TableUUID() == side.TableUUID() &&
		base.CurrentSchema().ID == side.CurrentSchema().ID &&
		base.DefaultPartitionSpec() == side.DefaultPartitionSpec()
}

// deleteKey identifies a delete file: its path and, for a deletion vector
// (several may share one Puffin file), its offset in the file (-1 if none).
type deleteKey struct {
	path   string
	offset int64
}

// fileSet is what a snapshot's manifests list as live (status ADDED or
// EXISTING).
type fileSet struct {
	data    []iceberg.DataFile  // data files, in manifest order, each path once
	paths   map[string]struct{} // paths of data
	deletes map[deleteKey]struct{}
}

// snapshotFiles reads the live data and delete files of snapshot s (nil: an
// empty set).
func snapshotFiles(fs iceio.IO, s *table.Snapshot) (*fileSet, error) {
	out := &fileSet{paths: map[string]struct{}{}, deletes: map[deleteKey]struct{}{}}
	if s == nil {
		return out, nil
	}
	manifests, err := s.Manifests(fs)
	if err != nil {
		return nil, fmt.Errorf("reading manifest list of snapshot %d: %w", s.SnapshotID, err)
	}
	for _, m := range manifests {
		for e, err := range m.Entries(fs, true) {
			if err != nil {
				return nil, fmt.Errorf("reading manifest %s: %w", m.FilePath(), err)
			}
			if st := e.Status(); st != iceberg.EntryStatusADDED && st != iceberg.EntryStatusEXISTING {
				continue
			}
			df := e.DataFile()
			if m.ManifestContent() != iceberg.ManifestContentData || df.ContentType() != iceberg.EntryContentData {
				k := deleteKey{path: df.FilePath(), offset: -1}
				if off := df.ContentOffset(); off != nil {
					k.offset = *off
				}
				out.deletes[k] = struct{}{}
				continue
			}
			if _, dup := out.paths[df.FilePath()]; dup {
				continue
			}
			out.paths[df.FilePath()] = struct{}{}
			out.data = append(out.data, df)
		}
	}
	return out, nil
}

// appendedBy reports whether side holds every data file of base (b) and no
// delete file that base does not: side can only have appended data files.
func (b *fileSet) appendedBy(side *fileSet) bool {
	for p := range b.paths {
		if _, ok := side.paths[p]; !ok {
			return false
		}
	}
	for k := range side.deletes {
		if _, ok := b.deletes[k]; !ok {
			return false
		}
	}
	return true
}
