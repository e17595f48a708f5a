package iceberg

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

const salesCSV = `id,amount,country,day,paid,ts
1,10.5,DE,2024-01-01,true,2024-01-01 10:00:00
2,20,FR,2024-01-02,false,2024-01-02 11:30:00
3,,DE,2024-01-02,true,2024-01-02T12:00:00
`

func TestCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		files      func(t *testing.T, dir string) []string
		wantSchema string
		cols       []string
		wantRows   []string
	}{
		{
			name:       "csv",
			files:      func(t *testing.T, dir string) []string { return []string{writeFile(t, dir, "a.csv", salesCSV)} },
			wantSchema: "id:long amount:double country:string day:date paid:boolean ts:timestamp",
			cols:       []string{"id", "amount", "country", "day", "paid", "ts"},
			wantRows: []string{
				"1|10.5|DE|2024-01-01|true|2024-01-01T10:00:00",
				"2|20|FR|2024-01-02|false|2024-01-02T11:30:00",
				"3|(null)|DE|2024-01-02|true|2024-01-02T12:00:00",
			},
		},
		{
			name: "parquet",
			files: func(t *testing.T, dir string) []string {
				return []string{writeParquet(t, dir, "a.parquet",
					col{"id", arrow.PrimitiveTypes.Int64, []any{1, 2, 3}},
					col{"amount", arrow.PrimitiveTypes.Float64, []any{1.5, nil, 3.25}},
					col{"country", arrow.BinaryTypes.String, []any{"DE", "FR", nil}},
					col{"day", arrow.FixedWidthTypes.Date32, []any{"2024-01-01", "2024-01-02", "2024-01-03"}},
				)}
			},
			wantSchema: "id:long amount:double country:string day:date",
			cols:       []string{"id", "amount", "country", "day"},
			wantRows:   []string{"1|1.5|DE|2024-01-01", "2|(null)|FR|2024-01-02", "3|3.25|(null)|2024-01-03"},
		},
		{
			name: "parquet needing casts",
			files: func(t *testing.T, dir string) []string {
				return []string{writeParquet(t, dir, "a.parquet",
					col{"id", arrow.PrimitiveTypes.Int32, []any{7, 8}},
					col{"score", arrow.PrimitiveTypes.Float32, []any{0.5, 1.5}},
					col{"at", &arrow.TimestampType{Unit: arrow.Nanosecond}, []any{"2024-03-01 10:00:00.123456789", nil}},
				)}
			},
			wantSchema: "id:int score:float at:timestamp",
			cols:       []string{"id", "score", "at"},
			wantRows:   []string{"7|0.5|2024-03-01T10:00:00.123456", "8|1.5|(null)"},
		},
		{
			// What pandas hands pyarrow: int64, float64, object strings,
			// categoricals, datetime64[ns], dates, bools, large strings.
			name: "pandas types with a dictionary",
			files: func(t *testing.T, dir string) []string {
				return []string{writeIPC(t, dir, "out.arrow", []col{
					{"id", arrow.PrimitiveTypes.Int64, []any{1, 2, nil}},
					{"amount", arrow.PrimitiveTypes.Float64, []any{1.5, nil, 3.25}},
					{"name", arrow.BinaryTypes.String, []any{"ann", "bob", nil}},
					{"country", dictString, []any{"DE", nil, "DE"}},
					{"at", &arrow.TimestampType{Unit: arrow.Nanosecond}, []any{"2024-03-01 10:00:00.123456789", nil, "2024-03-02 00:00:00"}},
					{"day", arrow.FixedWidthTypes.Date32, []any{"2024-01-01", "2024-01-02", nil}},
					{"paid", arrow.FixedWidthTypes.Boolean, []any{true, nil, false}},
					{"note", arrow.BinaryTypes.LargeString, []any{"x", "", nil}},
				})}
			},
			wantSchema: "id:long amount:double name:string country:string at:timestamp day:date paid:boolean note:string",
			cols:       []string{"id", "amount", "name", "country", "at", "day", "paid", "note"},
			wantRows: []string{
				"(null)|3.25|(null)|DE|2024-03-02T00:00:00|(null)|false|(null)",
				"1|1.5|ann|DE|2024-03-01T10:00:00.123456|2024-01-01|true|x",
				"2|(null)|bob|(null)|(null)|2024-01-02|(null)|",
			},
		},
		{
			// No dictionary: the batches are read in place from the mapping.
			name: "several batches, mapped",
			files: func(t *testing.T, dir string) []string {
				return []string{writeIPC(t, dir, "out.feather",
					[]col{{"id", arrow.PrimitiveTypes.Int64, []any{1, 2}}, {"name", arrow.BinaryTypes.String, []any{"one", nil}}},
					[]col{{"id", arrow.PrimitiveTypes.Int64, []any{3}}, {"name", arrow.BinaryTypes.String, []any{"three"}}},
				)}
			},
			wantSchema: "id:long name:string",
			cols:       []string{"id", "name"},
			wantRows:   []string{"1|one", "2|(null)", "3|three"},
		},
		{
			name: "recognized by its magic bytes",
			files: func(t *testing.T, dir string) []string {
				return []string{writeIPC(t, dir, "output", []col{{"id", arrow.PrimitiveTypes.Int32, []any{7}}})}
			},
			wantSchema: "id:int",
			cols:       []string{"id"},
			wantRows:   []string{"7"},
		},
		{
			name: "timestamp with a time zone",
			files: func(t *testing.T, dir string) []string {
				return []string{writeIPC(t, dir, "out.ipc", []col{
					{"at", &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}, []any{"2024-03-01 10:00:00.000001999"}}})}
			},
			wantSchema: "at:timestamptz",
			cols:       []string{"at"},
			wantRows:   []string{"2024-03-01T10:00:00.000001Z"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFormat(t)
			files := tc.files(t, t.TempDir())
			out := mustImport(t, f, catalog.ImportSpec{Sources: files})
			if !out.Created || len(out.Imported) != len(files) || out.Rows != int64(len(tc.wantRows)) {
				t.Errorf("outcome = %+v", out)
			}
			e := out.Entry
			if !strings.HasPrefix(e.MetadataLocation, f.Storage().URI("sales/transactions-"+e.TableUUID+"/metadata/00001-")) ||
				!strings.HasSuffix(e.MetadataLocation, ".metadata.json") {
				t.Errorf("metadata location = %s", e.MetadataLocation)
			}
			if e.SnapshotID == 0 || e.TableUUID == "" {
				t.Errorf("entry = %+v", e)
			}
			info := describe(t, f, e)
			var got []string
			for _, c := range info.Schema {
				got = append(got, c.Name+":"+c.Type)
				if c.Required {
					t.Errorf("column %s is required; imported columns are optional", c.Name)
				}
			}
			if strings.Join(got, " ") != tc.wantSchema {
				t.Errorf("schema = %s, want %s", strings.Join(got, " "), tc.wantSchema)
			}
			if info.RowCount != int64(len(tc.wantRows)) || info.FileCount == 0 || info.Snapshot == nil ||
				info.Snapshot.Operation != "append" || info.FormatVersion != 2 {
				t.Errorf("info = %+v", info)
			}
			eqStrings(t, "rows", scan(t, e, tc.cols...), tc.wantRows)
		})
	}
}

// The metadata file is plain Iceberg: iceberg-go loads it through its own
// file system and a hand-made table.New works the same.
func TestMetadataIsPlainIceberg(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	out := mustImport(t, f, catalog.ImportSpec{Sources: []string{writeFile(t, dir, "a.csv", salesCSV)}})
	md, err := table.ParseMetadataBytes(readLocation(t, out.Entry.MetadataLocation))
	if err != nil {
		t.Fatalf("parsing metadata JSON: %v", err)
	}
	if md.TableUUID().String() != out.Entry.TableUUID || md.CurrentSnapshot().SnapshotID != out.Entry.SnapshotID ||
		md.CurrentSchema().ID != out.Entry.SchemaID {
		t.Errorf("entry %+v does not match metadata", out.Entry)
	}
	if md.Properties()[table.MetadataDeleteAfterCommitEnabledKey] != "false" {
		t.Errorf("properties = %v", md.Properties())
	}
	fs := testFS(t, out.Entry.MetadataLocation)
	tbl := table.New(tableIdent(salesIdent), md, out.Entry.MetadataLocation, func(context.Context) (iceio.IO, error) { return fs, nil }, nil)
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	if at.NumRows() != 3 {
		t.Errorf("rows = %d", at.NumRows())
	}
}

func TestAppendAndReplace(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	a := writeFile(t, dir, "a.csv", "id,name\n1,one\n2,two\n")
	b := writeFile(t, dir, "b.csv", "id,name\n3,three\n")
	c := writeParquet(t, dir, "c.parquet",
		col{"id", arrow.PrimitiveTypes.Int64, []any{10, 11}},
		col{"name", arrow.BinaryTypes.String, []any{"ten", "eleven"}})

	e1 := mustImport(t, f, catalog.ImportSpec{Sources: []string{a}}).Entry
	out := mustImport(t, f, catalog.ImportSpec{Current: &e1, Sources: []string{b, c}, Mode: catalog.ImportAppend,
		SnapshotProperties: map[string]string{"lakehouse.commit": "abc"}})
	e2 := out.Entry
	if out.Created || out.Rows != 3 || len(out.Imported) != 2 || len(out.Skipped) != 1-1 {
		t.Errorf("append outcome = %+v", out)
	}
	eqStrings(t, "after append", scan(t, e2, "id", "name"),
		[]string{"10|ten", "11|eleven", "1|one", "2|two", "3|three"})
	info := describe(t, f, e2)
	if info.Snapshot.ParentID != e1.SnapshotID || info.Snapshot.Summary["lakehouse.commit"] != "abc" ||
		info.Snapshots != 2 || info.RowCount != 5 || info.FileCount != 3 {
		t.Errorf("after append: %+v snapshot %+v", info, info.Snapshot)
	}
	// e1 is untouched: still readable, still 2 rows.
	eqStrings(t, "old state", scan(t, e1, "id"), []string{"1", "2"})

	out = mustImport(t, f, catalog.ImportSpec{Current: &e2, Sources: []string{b}, Mode: catalog.ImportReplace})
	e3 := out.Entry
	eqStrings(t, "after replace", scan(t, e3, "id", "name"), []string{"3|three"})
	info = describe(t, f, e3)
	if info.Snapshot.Operation != "overwrite" || info.RowCount != 1 || info.FileCount != 1 || info.Snapshots != 3 {
		t.Errorf("after replace: %+v snapshot %+v", info, info.Snapshot)
	}
	if !strings.Contains(e3.MetadataLocation, "/metadata/00003-") {
		t.Errorf("third state is %s", e3.MetadataLocation)
	}
	// Every state's files are still there.
	for _, e := range []catalog.TableEntry{e1, e2} {
		for _, df := range describe(t, f, e).Files {
			if _, _, err := f.Storage().Stat(context.Background(), storageKey(t, f, df.Path)); err != nil {
				t.Errorf("data file of an older state is gone: %v", err)
			}
		}
	}
}

func TestSkipAlreadyImported(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	a := writeFile(t, dir, "in/a.csv", "id\n1\n")
	b := writeFile(t, dir, "in/b.csv", "id\n2\n")
	e1 := mustImport(t, f, catalog.ImportSpec{Sources: []string{a}}).Entry

	out := mustImport(t, f, catalog.ImportSpec{Current: &e1, Sources: []string{filepath.Join(dir, "in")}})
	eqStrings(t, "imported", out.Imported, []string{b})
	eqStrings(t, "skipped", out.Skipped, []string{a})
	e2 := out.Entry

	out = mustImport(t, f, catalog.ImportSpec{Current: &e2, Sources: []string{filepath.Join(dir, "in", "*.csv")}})
	if out.Entry != e2 || len(out.Imported) != 0 || len(out.Skipped) != 2 || out.Rows != 0 {
		t.Errorf("all skipped: %+v", out)
	}

	// A changed file is imported again.
	writeFile(t, dir, "in/a.csv", "id\n1\n100\n")
	out = mustImport(t, f, catalog.ImportSpec{Current: &e2, Sources: []string{filepath.Join(dir, "in")}})
	eqStrings(t, "changed file imported", out.Imported, []string{a})
	e3 := out.Entry
	eqStrings(t, "rows", scan(t, e3, "id"), []string{"1", "1", "100", "2"})

	// Replace imports every source, and lineage stops at it: after the
	// replace only b is in the table, so a is imported again.
	out = mustImport(t, f, catalog.ImportSpec{Current: &e3, Sources: []string{b}, Mode: catalog.ImportReplace})
	eqStrings(t, "replace imports", out.Imported, []string{b})
	e4 := out.Entry
	out = mustImport(t, f, catalog.ImportSpec{Current: &e4, Sources: []string{filepath.Join(dir, "in")}})
	eqStrings(t, "after replace, imported", out.Imported, []string{a})
	eqStrings(t, "after replace, skipped", out.Skipped, []string{b})
	eqStrings(t, "rows", scan(t, out.Entry, "id"), []string{"1", "100", "2"})
}

func TestPartitioned(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	src := writeFile(t, dir, "a.csv", `id,ts,country
1,2024-01-01 10:00:00,DE
2,2024-01-01 23:59:59,DE
3,2024-01-02 00:00:00,DE
4,2024-01-02 08:00:00,FR
5,2024-01-02 09:00:00,
`)
	out := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}, PartitionBy: []string{"day(ts)", "identity(country)"}})
	info := describe(t, f, out.Entry)
	var spec []string
	for _, pf := range info.PartitionSpec {
		spec = append(spec, pf.SourceColumn+":"+pf.Transform+":"+pf.Name)
	}
	eqStrings(t, "spec", spec, []string{"ts:day:ts_day", "country:identity:country"})
	var parts []string
	var records int64
	for _, df := range info.Files {
		parts = append(parts, df.Partition["ts_day"]+"/"+df.Partition["country"])
		records += df.Records
		if !strings.HasPrefix(df.Path, info.Location+"/data/") || df.Format != "PARQUET" {
			t.Errorf("data file %+v", df)
		}
	}
	// Files come sorted by path, which has the partition in it.
	eqStrings(t, "partitions", parts, []string{"2024-01-01/DE", "2024-01-02/DE", "2024-01-02/FR", "2024-01-02/null"})
	if records != 5 || info.FileCount != 4 {
		t.Errorf("records %d files %d", records, info.FileCount)
	}
	eqStrings(t, "rows", scan(t, out.Entry, "id", "country"), []string{"1|DE", "2|DE", "3|DE", "4|FR", "5|(null)"})

	// Appending to a partitioned table streams Parquet too (no fast path).
	p := writeParquet(t, dir, "b.parquet",
		col{"id", arrow.PrimitiveTypes.Int64, []any{6}},
		col{"ts", &arrow.TimestampType{Unit: arrow.Microsecond}, []any{"2024-01-03 00:00:00"}},
		col{"country", arrow.BinaryTypes.String, []any{"IT"}})
	e := out.Entry
	out = mustImport(t, f, catalog.ImportSpec{Current: &e, Sources: []string{p}})
	info = describe(t, f, out.Entry)
	if info.FileCount != 5 || info.Files[4].Partition["ts_day"] != "2024-01-03" || info.Files[4].Partition["country"] != "IT" {
		t.Errorf("after append: %+v", info.Files)
	}
}

func TestSchemaConflict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    func(t *testing.T, dir string) string
		wantErr string
	}{
		{
			name:    "string into double",
			file:    func(t *testing.T, dir string) string { return writeFile(t, dir, "b.csv", "id,amount\n3,lots\n") },
			wantErr: `file %DIR%/b.csv: column "amount" is string in the file but double in table sales.transactions`,
		},
		{
			name: "double into long",
			file: func(t *testing.T, dir string) string {
				return writeParquet(t, dir, "b.parquet",
					col{"id", arrow.PrimitiveTypes.Float64, []any{1.5}}, col{"amount", arrow.PrimitiveTypes.Float64, []any{1.0}})
			},
			wantErr: `file %DIR%/b.parquet: column "id" is double in the file but long in table sales.transactions`,
		},
		{
			name: "int into double is not a widening",
			file: func(t *testing.T, dir string) string {
				return writeParquet(t, dir, "b.parquet",
					col{"id", arrow.PrimitiveTypes.Int64, []any{1}}, col{"amount", arrow.PrimitiveTypes.Int32, []any{1}})
			},
			wantErr: `file %DIR%/b.parquet: column "amount" is int in the file but double in table sales.transactions`,
		},
		{
			name:    "missing column",
			file:    func(t *testing.T, dir string) string { return writeFile(t, dir, "b.csv", "id\n3\n") },
			wantErr: `file %DIR%/b.csv: column "amount" of table sales.transactions is missing from the file; the table's columns are id, amount`,
		},
		{
			name:    "extra column",
			file:    func(t *testing.T, dir string) string { return writeFile(t, dir, "b.csv", "id,amount,note\n3,1.5,x\n") },
			wantErr: `file %DIR%/b.csv: column "note" is not in table sales.transactions; the table's columns are id, amount`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFormat(t)
			dir := t.TempDir()
			e := mustImport(t, f, catalog.ImportSpec{Sources: []string{writeFile(t, dir, "a.csv", "id,amount\n1,1.5\n2,2\n")}}).Entry
			metaDir := locDir(e.MetadataLocation)
			before := listDir(t, f, metaDir)
			good := writeFile(t, dir, "0good.csv", "id,amount\n5,5.5\n")
			bad := tc.file(t, dir)
			_, err := f.Import(context.Background(), catalog.ImportSpec{Ident: salesIdent, Current: &e, Sources: []string{good, bad}})
			want := strings.ReplaceAll(tc.wantErr, "%DIR%", dir)
			if err == nil || err.Error() != want || !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error = %v\nwant %s (invalid argument)", err, want)
			}
			// The schema is checked before anything is written: no new
			// metadata, manifest or data file.
			eqStrings(t, "metadata dir", listDir(t, f, metaDir), before)
			if files := listDir(t, f, locDir(metaDir)+"/data"); len(files) != 1 {
				t.Errorf("data files: %v", files)
			}
		})
	}
}

// A Parquet file with exactly the table's Arrow schema is copied byte for
// byte into an unpartitioned table; anything else is rewritten.
func TestParquetFastPath(t *testing.T) {
	t.Parallel()
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}
	tests := []struct {
		name        string
		cols        []col
		partitionBy []string
		wantCopy    bool
	}{
		{name: "exact schema", wantCopy: true, cols: []col{
			{"id", arrow.PrimitiveTypes.Int64, []any{5, 6}}, {"name", arrow.BinaryTypes.String, []any{"five", nil}}}},
		{name: "other column order", cols: []col{
			{"name", arrow.BinaryTypes.String, []any{"five", nil}}, {"id", arrow.PrimitiveTypes.Int64, []any{5, 6}}}},
		{name: "narrower ints", cols: []col{
			{"id", arrow.PrimitiveTypes.Int32, []any{5, 6}}, {"name", arrow.BinaryTypes.String, []any{"five", nil}}}},
		{name: "dictionary strings", cols: []col{
			{"id", arrow.PrimitiveTypes.Int64, []any{5, 6}}, {"name", dict, []any{"five", nil}}}},
		{name: "partitioned table", partitionBy: []string{"bucket(2,id)"}, cols: []col{
			{"id", arrow.PrimitiveTypes.Int64, []any{5, 6}}, {"name", arrow.BinaryTypes.String, []any{"five", nil}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFormat(t)
			dir := t.TempDir()
			e := mustImport(t, f, catalog.ImportSpec{Sources: []string{writeFile(t, dir, "a.csv", "id,name\n1,one\n")},
				PartitionBy: tc.partitionBy}).Entry
			src := writeParquet(t, dir, "b.parquet", tc.cols...)
			out := mustImport(t, f, catalog.ImportSpec{Current: &e, Sources: []string{src}})
			eqStrings(t, "rows", scan(t, out.Entry, "id", "name"), []string{"1|one", "5|five", "6|(null)"})
			want, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			copied := false
			for _, df := range describe(t, f, out.Entry).Files {
				copied = copied || string(readLocation(t, df.Path)) == string(want)
			}
			if copied != tc.wantCopy {
				t.Errorf("source copied as is: %v, want %v", copied, tc.wantCopy)
			}
		})
	}
}
