package iceberg

import (
	"context"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
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

func TestMergeAppends(t *testing.T) {
	t.Parallel()
	type states struct{ base, ours, theirs catalog.TableEntry }
	tests := []struct {
		name string
		// make builds the three states from an importer.
		make     func(t *testing.T, f *Format, imp func(cur *catalog.TableEntry, mode catalog.ImportMode, rows string) catalog.TableEntry) states
		wantOK   bool
		wantRows []string
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
			eqStrings(t, "merged rows", scan(t, merged, "id"), tc.wantRows)
			info := describe(t, f, merged)
			if info.RowCount != int64(len(tc.wantRows)) || info.TableUUID != s.base.TableUUID {
				t.Errorf("merged info %+v", info)
			}
		})
	}
}

// After a merge, ours has theirs' files (no copies) in one new append
// snapshot on top of ours, and files theirs imported are skipped later.
func TestMergeAppendsSnapshot(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	a := writeFile(t, dir, "a.csv", "id\n1\n")
	b := writeFile(t, dir, "b.csv", "id\n2\n")
	c := writeFile(t, dir, "c.csv", "id\n3\n")
	base := mustImport(t, f, catalog.ImportSpec{Sources: []string{a}}).Entry
	ours := mustImport(t, f, catalog.ImportSpec{Current: &base, Sources: []string{b}}).Entry
	theirs := mustImport(t, f, catalog.ImportSpec{Current: &base, Sources: []string{c}}).Entry
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
