package iceberg

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
)

// Describe implements catalog.TableFormat. It reads the metadata file and
// the current snapshot's manifests (not the data files). It returns
// ErrNotFound when the metadata file does not exist.
func (f *Format) Describe(ctx context.Context, id catalog.TableIdent, e catalog.TableEntry) (*catalog.TableInfo, error) {
	tbl, cat, err := f.load(ctx, id, e)
	if err != nil {
		return nil, err
	}
	md := tbl.Metadata()
	sc := md.CurrentSchema()
	info := &catalog.TableInfo{
		Ident:         id,
		Namespace:     id.Namespace,
		Name:          id.Name,
		Metadata:      e.MetadataLocation,
		TableUUID:     md.TableUUID().String(),
		FormatVersion: md.Version(),
		Location:      md.Location(),
		Schema:        columnsOf(sc),
		PartitionSpec: []catalog.PartitionField{},
		Snapshots:     len(md.Snapshots()),
		Files:         []catalog.DataFileInfo{},
	}
	spec := md.PartitionSpec()
	for _, pf := range spec.Fields() {
		src, _ := sc.FindColumnName(pf.SourceID())
		info.PartitionSpec = append(info.PartitionSpec, catalog.PartitionField{
			SourceColumn: src, Transform: pf.Transform.String(), Name: pf.Name})
	}
	snap := md.CurrentSnapshot()
	if snap == nil {
		return info, nil
	}
	info.Snapshot = snapshotInfo(snap)
	if snap.Summary != nil {
		info.RowCount, _ = strconv.ParseInt(snap.Summary.Properties["total-records"], 10, 64)
	}
	files, err := liveDataFilesFresh(cat.fs, snap, catalog.FreshReads(ctx))
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", id, err)
	}
	for _, df := range files {
		dfi := catalog.DataFileInfo{
			Path:    df.FilePath(),
			Format:  string(df.FileFormat()),
			Records: df.Count(),
			Bytes:   df.FileSizeBytes(),
		}
		if ps := md.PartitionSpecByID(int(df.SpecID())); ps != nil && !ps.IsUnpartitioned() {
			dfi.Partition, dfi.NullPartitions = partitionValues(sc, ps, df.Partition())
		}
		info.Files = append(info.Files, dfi)
		info.TotalBytes += dfi.Bytes
	}
	info.FileCount = len(info.Files)
	sort.Slice(info.Files, func(i, j int) bool { return info.Files[i].Path < info.Files[j].Path })
	return info, nil
}

// Snapshots implements catalog.TableFormat: the snapshots of the metadata
// file, read without their manifests. It returns ErrNotFound when the
// metadata file does not exist.
func (f *Format) Snapshots(ctx context.Context, id catalog.TableIdent, e catalog.TableEntry) ([]catalog.SnapshotInfo, error) {
	tbl, _, err := f.load(ctx, id, e)
	if err != nil {
		return nil, err
	}
	snaps := tbl.Metadata().Snapshots()
	out := make([]catalog.SnapshotInfo, 0, len(snaps))
	for i := range snaps {
		out = append(out, *snapshotInfo(&snaps[i]))
	}
	return out, nil
}

func columnsOf(sc *iceberg.Schema) []catalog.Column {
	out := make([]catalog.Column, 0, len(sc.Fields()))
	for _, f := range sc.Fields() {
		out = append(out, catalog.Column{ID: f.ID, Name: f.Name, Type: f.Type.String(), Required: f.Required})
	}
	return out
}

func snapshotInfo(s *table.Snapshot) *catalog.SnapshotInfo {
	si := &catalog.SnapshotInfo{ID: s.SnapshotID, Time: time.UnixMilli(s.TimestampMs).UTC()}
	if s.ParentSnapshotID != nil {
		si.ParentID = *s.ParentSnapshotID
	}
	if s.Summary != nil {
		si.Operation = string(s.Summary.Operation)
		si.Summary = map[string]string{}
		for k, v := range s.Summary.Properties {
			si.Summary[k] = v
		}
		// A malformed value (not written by MergeAppends) names nothing.
		si.ReplacedSnapshotID, _ = strconv.ParseInt(s.Summary.Properties[PropMergedFrom], 10, 64)
	}
	return si
}

// partitionValues renders a data file's partition tuple as strings keyed by
// partition field name ("ts_day": "2024-01-02", "country": "DE"), and
// names the fields whose value is null (rendered "null").
func partitionValues(sc *iceberg.Schema, spec *iceberg.PartitionSpec, vals map[int]any) (map[string]string, []string) {
	out := map[string]string{}
	var nulls []string
	for _, pf := range spec.Fields() {
		var typ iceberg.Type = iceberg.PrimitiveTypes.String
		if f, ok := sc.FindFieldByID(pf.SourceID()); ok {
			typ = f.Type
		}
		v := vals[pf.FieldID]
		if v == nil {
			nulls = append(nulls, pf.Name)
		}
		out[pf.Name] = pf.Transform.ToHumanStrType(typ, v)
	}
	return out, nulls
}

// liveDataFiles lists the data files of snapshot s (nil: none).
func liveDataFiles(fs iceio.IO, s *table.Snapshot) ([]iceberg.DataFile, error) {
	return liveDataFilesFresh(fs, s, false)
}

// liveDataFilesFresh is liveDataFiles, reading every manifest from fs if
// fresh (not from the cache of manifests).
func liveDataFilesFresh(fs iceio.IO, s *table.Snapshot, fresh bool) ([]iceberg.DataFile, error) {
	if s == nil {
		return nil, nil
	}
	manifests, err := s.Manifests(fs)
	if err != nil {
		return nil, fmt.Errorf("reading manifest list of snapshot %d: %w", s.SnapshotID, err)
	}
	var out []iceberg.DataFile
	for _, m := range manifests {
		if m.ManifestContent() != iceberg.ManifestContentData {
			continue
		}
		files, err := manifestDataFiles(fs, m, fresh)
		if err != nil {
			return nil, fmt.Errorf("reading manifest %s: %w", m.FilePath(), err)
		}
		out = append(out, files...)
	}
	return out, nil
}

// SchemaDiff implements catalog.TableFormat: the top-level columns added,
// removed, retyped or with changed nullability from a to b. Columns are
// matched by field id when a and b are states of the same table, and by
// name otherwise (or when the id is not found).
func (f *Format) SchemaDiff(ctx context.Context, a, b catalog.TableEntry) ([]catalog.SchemaChange, error) {
	ta, _, err := f.load(ctx, catalog.TableIdent{}, a)
	if err != nil {
		return nil, err
	}
	tb, _, err := f.load(ctx, catalog.TableIdent{}, b)
	if err != nil {
		return nil, err
	}
	sameTable := ta.Metadata().TableUUID() == tb.Metadata().TableUUID()
	return schemaDiff(ta.Schema(), tb.Schema(), sameTable), nil
}

func schemaDiff(a, b *iceberg.Schema, byID bool) []catalog.SchemaChange {
	var out []catalog.SchemaChange
	matched := map[int]bool{} // field ids of b that matched
	find := func(f iceberg.NestedField) (iceberg.NestedField, bool) {
		if byID {
			if g, ok := b.FindFieldByID(f.ID); ok && isTopLevel(b, g.ID) {
				return g, true
			}
		}
		for _, g := range b.Fields() {
			if g.Name == f.Name && !matched[g.ID] {
				return g, true
			}
		}
		return iceberg.NestedField{}, false
	}
	for _, fa := range a.Fields() {
		fb, ok := find(fa)
		if !ok {
			out = append(out, catalog.SchemaChange{Change: "removed", Column: fa.Name, From: fa.Type.String()})
			continue
		}
		matched[fb.ID] = true
		if fb.Name != fa.Name { // renamed: report as a removal and an addition
			out = append(out, catalog.SchemaChange{Change: "removed", Column: fa.Name, From: fa.Type.String()})
			matched[fb.ID] = false
			continue
		}
		if !fa.Type.Equals(fb.Type) {
			out = append(out, catalog.SchemaChange{Change: "type", Column: fa.Name, From: fa.Type.String(), To: fb.Type.String()})
		}
		if fa.Required != fb.Required {
			out = append(out, catalog.SchemaChange{Change: "nullability", Column: fa.Name,
				From: nullability(fa.Required), To: nullability(fb.Required)})
		}
	}
	for _, fb := range b.Fields() {
		if !matched[fb.ID] {
			out = append(out, catalog.SchemaChange{Change: "added", Column: fb.Name, To: fb.Type.String()})
		}
	}
	return out
}

func isTopLevel(sc *iceberg.Schema, id int) bool {
	for _, f := range sc.Fields() {
		if f.ID == id {
			return true
		}
	}
	return false
}

func nullability(required bool) string {
	if required {
		return "required"
	}
	return "optional"
}
