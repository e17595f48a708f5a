package iceberg

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/lazysubstrait"
)

// evolveSchema adds a column to a table state, as another writer might.
func evolveSchema(t *testing.T, f *Format, e catalog.TableEntry) catalog.TableEntry {
	t.Helper()
	tbl, cat, err := f.load(context.Background(), salesIdent, e)
	if err != nil {
		t.Fatal(err)
	}
	txn := tbl.NewTransaction()
	if err := txn.UpdateSchema(true, false).AddColumn([]string{"extra"}, iceberg.PrimitiveTypes.String, "", false, nil).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return entryOf(cat.base, cat.baseLoc)
}

// deleteRows deletes the rows whose id is id from a table state, rewriting
// the files that hold them (copy-on-write) or writing position delete files
// (merge-on-read).
func deleteRows(t *testing.T, f *Format, e catalog.TableEntry, id int64, mergeOnRead bool) catalog.TableEntry {
	t.Helper()
	// A row-filter delete evaluates its filter through Substrait, whose
	// catalog the product never loads.
	if err := lazysubstrait.Load(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tbl, cat, err := f.load(ctx, salesIdent, e)
	if err != nil {
		t.Fatal(err)
	}
	txn := tbl.NewTransaction()
	mode := table.WriteModeCopyOnWrite
	if mergeOnRead {
		mode = table.WriteModeMergeOnRead
	}
	if err := txn.SetProperties(iceberg.Properties{table.WriteDeleteModeKey: mode}); err != nil {
		t.Fatal(err)
	}
	if err := txn.Delete(ctx, iceberg.EqualTo(iceberg.Reference("id"), id), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return entryOf(cat.base, cat.baseLoc)
}

// deleteFiles counts the live delete files of a table state.
func deleteFiles(t *testing.T, f *Format, e catalog.TableEntry) int {
	t.Helper()
	tbl, cat, err := f.load(context.Background(), salesIdent, e)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := snapshotFiles(cat.fs, tbl.Metadata().CurrentSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	return len(fs.deletes)
}

// mustMerge merges theirs into ours and fails the test unless it combines.
func mustMerge(t *testing.T, f *Format, base, ours, theirs catalog.TableEntry) catalog.TableEntry {
	t.Helper()
	merged, ok, err := f.MergeAppends(context.Background(), salesIdent, base, ours, theirs)
	if err != nil || !ok {
		t.Fatalf("merge: ok %v, err %v", ok, err)
	}
	return merged
}

func TestMergeAppends(t *testing.T) {
	t.Parallel()
	type states struct{ base, ours, theirs catalog.TableEntry }
	tests := []struct {
		name string
		// make builds the three states from an importer.
		make     func(t *testing.T, f *Format, imp func(cur *catalog.TableEntry, mode catalog.ImportMode, rows string) catalog.TableEntry) states
		wantOK   bool
		wantRows []string
		// wantOurs: the result is ours unchanged.
		wantOurs bool
		// wantRecords is the merged snapshot's total-records when it is not
		// len(wantRows) (rows hidden by delete files still count).
		wantRecords int64
	}{
		{
			name: "both appended",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := imp(nil, "", "1\n2\n")
				ours := imp(&base, catalog.ImportAppend, "3\n")
				ours = imp(&ours, catalog.ImportAppend, "4\n")
				theirs := imp(&base, catalog.ImportAppend, "5\n")
				theirs = imp(&theirs, catalog.ImportAppend, "6\n7\n")
				return states{base, ours, theirs}
			},
			wantOK:   true,
			wantRows: []string{"1", "2", "3", "4", "5", "6", "7"},
		},
		{
			name: "ours unchanged",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := imp(nil, "", "1\n")
				return states{base, base, imp(&base, catalog.ImportAppend, "2\n")}
			},
			wantOK:   true,
			wantRows: []string{"1", "2"},
		},
		{
			name: "theirs unchanged",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := imp(nil, "", "1\n")
				return states{base, imp(&base, catalog.ImportAppend, "3\n"), base}
			},
			wantOK:   true,
			wantRows: []string{"1", "3"},
		},
		{
			name: "one side replaced",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := imp(nil, "", "1\n")
				ours := imp(&base, catalog.ImportAppend, "2\n")
				theirs := imp(&base, catalog.ImportReplace, "3\n")
				return states{base, ours, theirs}
			},
		},
		{
			name: "replace then append",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := imp(nil, "", "1\n")
				ours := imp(&base, catalog.ImportReplace, "2\n")
				ours = imp(&ours, catalog.ImportAppend, "3\n")
				return states{base, ours, imp(&base, catalog.ImportAppend, "4\n")}
			},
		},
		{
			name: "schema changed",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := imp(nil, "", "1\n")
				ours := imp(&base, catalog.ImportAppend, "2\n")
				return states{base, ours, evolveSchema(t, f, imp(&base, catalog.ImportAppend, "3\n"))}
			},
		},
		{
			name: "different tables",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := imp(nil, "", "1\n")
				return states{base, imp(&base, catalog.ImportAppend, "2\n"), imp(nil, "", "1\n3\n")}
			},
		},
		{
			// After B is merged into A, A's lineage holds the merge snapshot
			// and never reaches B's, which is the next merge base.
			name: "repeated merge",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				b0 := imp(nil, "", "1\n")
				a := imp(&b0, catalog.ImportAppend, "2\n")
				b1 := imp(&b0, catalog.ImportAppend, "3\n")
				a = mustMerge(t, f, b0, a, b1)
				a = imp(&a, catalog.ImportAppend, "4\n")
				b2 := imp(&b1, catalog.ImportAppend, "5\n")
				return states{b1, a, b2}
			},
			wantOK:   true,
			wantRows: []string{"1", "2", "3", "4", "5"},
		},
		{
			// Merging an older base again: theirs' files are all in ours.
			name: "theirs already merged",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				b0 := imp(nil, "", "1\n")
				a := imp(&b0, catalog.ImportAppend, "2\n")
				b1 := imp(&b0, catalog.ImportAppend, "3\n")
				return states{b0, mustMerge(t, f, b0, a, b1), b1}
			},
			wantOK:   true,
			wantRows: []string{"1", "2", "3"},
			wantOurs: true,
		},
		{
			// Both sides merged the same append of a third branch.
			name: "same file merged on both sides",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				b0 := imp(nil, "", "1\n")
				c := imp(&b0, catalog.ImportAppend, "9\n")
				a := mustMerge(t, f, b0, imp(&b0, catalog.ImportAppend, "2\n"), c)
				b := mustMerge(t, f, b0, imp(&b0, catalog.ImportAppend, "3\n"), c)
				return states{b0, a, b}
			},
			wantOK:   true,
			wantRows: []string{"1", "2", "3", "9"},
		},
		{
			name: "empty base",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				empty := writeParquet(t, t.TempDir(), "empty.parquet", col{"id", arrow.PrimitiveTypes.Int64, nil})
				base := mustImport(t, f, catalog.ImportSpec{Sources: []string{empty}}).Entry
				if base.SnapshotID != 0 {
					t.Fatalf("base has snapshot %d", base.SnapshotID)
				}
				return states{base, imp(&base, catalog.ImportAppend, "1\n"), imp(&base, catalog.ImportAppend, "2\n")}
			},
			wantOK:   true,
			wantRows: []string{"1", "2"},
		},
		{
			name: "theirs rewrote a base file",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := imp(nil, "", "1\n2\n")
				ours := imp(&base, catalog.ImportAppend, "3\n")
				return states{base, ours, deleteRows(t, f, imp(&base, catalog.ImportAppend, "4\n"), 1, false)}
			},
		},
		{
			name: "ours deleted base rows",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := imp(nil, "", "1\n2\n")
				ours := deleteRows(t, f, imp(&base, catalog.ImportAppend, "3\n"), 1, true)
				if deleteFiles(t, f, ours) == 0 {
					t.Fatal("no delete file written")
				}
				return states{base, ours, imp(&base, catalog.ImportAppend, "4\n")}
			},
		},
		{
			// Every data file of base is still there, but theirs added a
			// delete file: adding its data file alone would revive row 5.
			name: "theirs deleted its own rows",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := imp(nil, "", "1\n")
				ours := imp(&base, catalog.ImportAppend, "2\n")
				theirs := deleteRows(t, f, imp(&base, catalog.ImportAppend, "5\n6\n"), 5, true)
				if deleteFiles(t, f, theirs) == 0 {
					t.Fatal("no delete file written")
				}
				return states{base, ours, theirs}
			},
		},
		{
			// Delete files base already had are no obstacle.
			name: "deletes in base",
			make: func(t *testing.T, f *Format, imp func(*catalog.TableEntry, catalog.ImportMode, string) catalog.TableEntry) states {
				base := deleteRows(t, f, imp(nil, "", "1\n2\n"), 1, true)
				if deleteFiles(t, f, base) == 0 {
					t.Fatal("no delete file written")
				}
				return states{base, imp(&base, catalog.ImportAppend, "3\n"), imp(&base, catalog.ImportAppend, "4\n")}
			},
			wantOK:      true,
			wantRows:    []string{"2", "3", "4"},
			wantRecords: 4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFormat(t)
			dir := t.TempDir()
			n := 0
			imp := func(cur *catalog.TableEntry, mode catalog.ImportMode, rows string) catalog.TableEntry {
				n++
				src := writeFile(t, dir, string(rune('a'+n))+".csv", "id\n"+rows)
				return mustImport(t, f, catalog.ImportSpec{Current: cur, Mode: mode, Sources: []string{src}}).Entry
			}
			s := tc.make(t, f, imp)
			merged, ok, err := f.MergeAppends(context.Background(), salesIdent, s.base, s.ours, s.theirs)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if !ok {
				return
			}
			if tc.wantOurs && merged != s.ours {
				t.Errorf("merged = %+v, want ours %+v", merged, s.ours)
			}
			eqStrings(t, "merged rows", scan(t, merged, "id"), tc.wantRows)
			info := describe(t, f, merged)
			records := tc.wantRecords
			if records == 0 {
				records = int64(len(tc.wantRows))
			}
			if info.RowCount != records || info.TableUUID != s.base.TableUUID {
				t.Errorf("merged info %+v", info)
			}
		})
	}
}

// forkedImports imports a.csv (id 1) as base, then b.csv (id 2) on top of
// it as ours and c.csv (id 3) as theirs.
func forkedImports(t *testing.T, f *Format) (dir, a, b, c string, base, ours, theirs catalog.TableEntry) {
	t.Helper()
	dir = t.TempDir()
	a = writeFile(t, dir, "a.csv", "id\n1\n")
	b = writeFile(t, dir, "b.csv", "id\n2\n")
	c = writeFile(t, dir, "c.csv", "id\n3\n")
	base = mustImport(t, f, catalog.ImportSpec{Sources: []string{a}}).Entry
	ours = mustImport(t, f, catalog.ImportSpec{Current: &base, Sources: []string{b}}).Entry
	theirs = mustImport(t, f, catalog.ImportSpec{Current: &base, Sources: []string{c}}).Entry
	return dir, a, b, c, base, ours, theirs
}

// After a merge, ours has theirs' files (no copies) in one new append
// snapshot on top of ours, and files theirs imported are skipped later.
func TestMergeAppendsSnapshot(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir, a, b, c, base, ours, theirs := forkedImports(t, f)
	merged, ok, err := f.MergeAppends(context.Background(), salesIdent, base, ours, theirs)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	info := describe(t, f, merged)
	if info.Snapshot.ParentID != ours.SnapshotID || info.Snapshot.Operation != string(table.OpAppend) || info.Snapshots != 3 {
		t.Errorf("merge snapshot %+v (%d snapshots)", info.Snapshot, info.Snapshots)
	}
	theirFiles := map[string]bool{}
	for _, df := range describe(t, f, theirs).Files {
		theirFiles[df.Path] = true
	}
	shared := 0
	for _, df := range info.Files {
		if theirFiles[df.Path] {
			shared++
		}
	}
	if shared != 2 || info.FileCount != 3 {
		t.Errorf("merged files %+v", info.Files)
	}
	out := mustImport(t, f, catalog.ImportSpec{Current: &merged, Sources: []string{a, b, c}})
	if len(out.Skipped) != 3 || out.Entry != merged {
		t.Errorf("import after merge: %+v", out)
	}

	// A second round between the same branches: the merge base is now
	// theirs' previous state. The merge snapshot adds only the file theirs
	// appended since, and carries its import so that it is skipped too.
	d := writeFile(t, dir, "d.csv", "id\n4\n")
	e := writeFile(t, dir, "e.csv", "id\n5\n")
	ours2 := mustImport(t, f, catalog.ImportSpec{Current: &merged, Sources: []string{d}}).Entry
	theirs2 := mustImport(t, f, catalog.ImportSpec{Current: &theirs, Sources: []string{e}}).Entry
	merged2 := mustMerge(t, f, theirs, ours2, theirs2)
	info2 := describe(t, f, merged2)
	if info2.Snapshot.ParentID != ours2.SnapshotID || info2.Snapshot.Operation != string(table.OpAppend) ||
		info2.Snapshot.Summary["added-data-files"] != "1" || info2.FileCount != 5 || info2.RowCount != 5 {
		t.Errorf("second merge snapshot %+v (%d files, %d rows)", info2.Snapshot, info2.FileCount, info2.RowCount)
	}
	out = mustImport(t, f, catalog.ImportSpec{Current: &merged2, Sources: []string{a, b, c, d, e}})
	if len(out.Skipped) != 5 || out.Entry != merged2 {
		t.Errorf("import after second merge: %+v", out)
	}
}

func TestSchemaDiff(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	e1 := mustImport(t, f, catalog.ImportSpec{Sources: []string{writeFile(t, dir, "a.csv", "id,name\n1,x\n")}}).Entry
	e2 := evolveSchema(t, f, e1)
	other := mustImport(t, f, catalog.ImportSpec{Ident: catalog.TableIdent{Namespace: "sales", Name: "other"},
		Sources: []string{writeFile(t, dir, "b.csv", "name,id,flag\nx,1.5,true\n")}}).Entry
	tests := []struct {
		name string
		a, b catalog.TableEntry
		want []catalog.SchemaChange
	}{
		{name: "same", a: e1, b: e1},
		{name: "added", a: e1, b: e2, want: []catalog.SchemaChange{{Change: "added", Column: "extra", To: "string"}}},
		{name: "removed", a: e2, b: e1, want: []catalog.SchemaChange{{Change: "removed", Column: "extra", From: "string"}}},
		{name: "by name across tables", a: e1, b: other, want: []catalog.SchemaChange{
			{Change: "type", Column: "id", From: "long", To: "double"},
			{Change: "added", Column: "flag", To: "boolean"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := f.SchemaDiff(context.Background(), tc.a, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("changes = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("change %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestSchemaDiffNullability(t *testing.T) {
	t.Parallel()
	a := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "n", Type: iceberg.PrimitiveTypes.Int32})
	b := iceberg.NewSchema(1,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 2, Name: "m", Type: iceberg.PrimitiveTypes.Int64})
	got := schemaDiff(a, b, true)
	want := []catalog.SchemaChange{
		{Change: "nullability", Column: "id", From: "required", To: "optional"},
		{Change: "removed", Column: "n", From: "int"},
		{Change: "added", Column: "m", To: "long"},
	}
	if len(got) != len(want) {
		t.Fatalf("changes = %+v", got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("change %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Snapshots lists what a state's metadata holds: ours' lineage and the
// merge snapshot, which names the snapshot of theirs it replaced; theirs'
// own snapshots are not in ours' metadata.
func TestSnapshotsAfterMerge(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	_, _, _, _, base, ours, theirs := forkedImports(t, f)
	merged := mustMerge(t, f, base, ours, theirs)
	snaps, err := f.Snapshots(context.Background(), salesIdent, merged)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	if len(snaps) != 3 || ids[0] != base.SnapshotID || ids[1] != ours.SnapshotID || ids[2] != merged.SnapshotID {
		t.Fatalf("snapshots %v, want base %d, ours %d, merge %d", ids, base.SnapshotID, ours.SnapshotID, merged.SnapshotID)
	}
	for _, s := range snaps[:2] {
		if s.ReplacedSnapshotID != 0 {
			t.Errorf("snapshot %d replaces %d", s.ID, s.ReplacedSnapshotID)
		}
	}
	if got := snaps[2].ReplacedSnapshotID; got != theirs.SnapshotID {
		t.Errorf("merge snapshot replaces %d, want theirs' %d", got, theirs.SnapshotID)
	}
	if info := describe(t, f, merged); info.Snapshot.ReplacedSnapshotID != theirs.SnapshotID {
		t.Errorf("describe: merge snapshot replaces %d, want %d", info.Snapshot.ReplacedSnapshotID, theirs.SnapshotID)
	}
	if _, err := f.Snapshots(context.Background(), salesIdent, catalog.TableEntry{MetadataLocation: merged.MetadataLocation + ".gone"}); !errdefs.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing metadata file: %v", err)
	}
}
