package iceberg

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// filesByPartition maps each data file's partition (its values joined by
// "/", in spec order) to its paths.
func filesByPartition(info *catalog.TableInfo) map[string][]string {
	out := map[string][]string{}
	for _, df := range info.Files {
		var parts []string
		for _, pf := range info.PartitionSpec {
			parts = append(parts, df.Partition[pf.Name])
		}
		k := strings.Join(parts, "/")
		out[k] = append(out[k], df.Path)
	}
	return out
}

func TestOverwritePartitions(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	src := writeFile(t, dir, "a.csv", "id,country\n1,DE\n2,FR\n3,FR\n4,IT\n5,\n")
	e1 := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}, PartitionBy: []string{"country"}}).Entry
	before := filesByPartition(describe(t, f, e1))

	// FR is replaced, ES added; DE, IT and the null partition keep their files.
	ov := writeIPC(t, dir, "fr.arrow", []col{
		{"id", arrow.PrimitiveTypes.Int64, []any{20, 30}},
		{"country", dictString, []any{"FR", "ES"}},
	})
	out := mustImport(t, f, catalog.ImportSpec{Current: &e1, Sources: []string{ov}, Mode: catalog.ImportOverwritePartitions})
	e2 := out.Entry
	eqStrings(t, "rows", scan(t, e2, "id", "country"), []string{"1|DE", "20|FR", "30|ES", "4|IT", "5|(null)"})
	info := describe(t, f, e2)
	after := filesByPartition(info)
	for _, p := range []string{"DE", "IT", "null"} {
		eqStrings(t, "files of "+p, after[p], before[p])
	}
	if len(after["FR"]) != 1 || after["FR"][0] == before["FR"][0] || len(after["ES"]) != 1 {
		t.Errorf("files: before %v after %v", before, after)
	}
	s := info.Snapshot
	if s.Operation != "overwrite" || s.Summary["deleted-data-files"] != "1" || s.Summary["added-data-files"] != "2" ||
		s.Summary[PropImportMode] != "overwrite-partitions" || info.RowCount != 5 {
		t.Errorf("snapshot %+v, rows %d", s, info.RowCount)
	}

	// The null partition is a partition too.
	nul := writeFile(t, dir, "null.csv", "id,country\n50,\n")
	e3 := mustImport(t, f, catalog.ImportSpec{Current: &e2, Sources: []string{nul}, Mode: catalog.ImportOverwritePartitions}).Entry
	eqStrings(t, "rows", scan(t, e3, "id", "country"), []string{"1|DE", "20|FR", "30|ES", "4|IT", "50|(null)"})

	// New partitions only: an append, nothing removed.
	pl := writeFile(t, dir, "pl.csv", "id,country\n60,PL\n")
	e4 := mustImport(t, f, catalog.ImportSpec{Current: &e3, Sources: []string{pl}, Mode: catalog.ImportOverwritePartitions}).Entry
	if info := describe(t, f, e4); info.Snapshot.Operation != "append" || info.RowCount != 6 {
		t.Errorf("new partition: %+v", info.Snapshot)
	}
	// Every older state still reads as it was.
	eqStrings(t, "first state", scan(t, e1, "id"), []string{"1", "2", "3", "4", "5"})
}

// Partition values of every kind match between the data files just written
// and those read back from manifests (dates, ints, strings, nulls).
func TestOverwritePartitionsTransforms(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	src := writeFile(t, dir, "a.csv", `id,ts,country
1,2024-01-01 10:00:00,DE
2,2024-01-01 11:00:00,FR
3,2024-01-02 10:00:00,DE
4,2024-01-02 12:00:00,
5,2024-01-03 10:00:00,DE
`)
	e1 := mustImport(t, f, catalog.ImportSpec{Sources: []string{src},
		PartitionBy: []string{"day(ts)", "country", "bucket(1,id)"}}).Entry
	ov := writeIPC(t, dir, "ov.arrow", []col{
		{"id", arrow.PrimitiveTypes.Int64, []any{10, 11}},
		{"ts", &arrow.TimestampType{Unit: arrow.Nanosecond}, []any{"2024-01-02 23:00:00", "2024-01-01 09:00:00"}},
		{"country", arrow.BinaryTypes.String, []any{nil, "FR"}},
	})
	e2 := mustImport(t, f, catalog.ImportSpec{Current: &e1, Sources: []string{ov}, Mode: catalog.ImportOverwritePartitions}).Entry
	eqStrings(t, "rows", scan(t, e2, "id"), []string{"1", "10", "11", "3", "5"})
}

func TestOverwritePartitionsModes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newTestFormat(t)
	dir := t.TempDir()
	a := writeFile(t, dir, "a.csv", "id,country\n1,DE\n2,FR\n")
	b := writeFile(t, dir, "b.csv", "id,country\n3,FR\n")

	// A missing table is created, with its partition spec.
	out := mustImport(t, f, catalog.ImportSpec{Sources: []string{a}, Mode: catalog.ImportOverwritePartitions,
		PartitionBy: []string{"country"}})
	part := out.Entry
	if !out.Created || len(describe(t, f, part).PartitionSpec) != 1 {
		t.Errorf("created: %+v", out)
	}

	// An unpartitioned table is replaced, and may change its columns.
	plain := mustImport(t, f, catalog.ImportSpec{Sources: []string{a}}).Entry
	other := writeFile(t, dir, "c.csv", "id,city\n9,Rome\n")
	e := mustImport(t, f, catalog.ImportSpec{Current: &plain, Sources: []string{other}, Mode: catalog.ImportOverwritePartitions}).Entry
	eqStrings(t, "unpartitioned", scan(t, e, "id", "city"), []string{"9|Rome"})

	// A partitioned table keeps its schema and its spec.
	_, err := f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Current: &part, Sources: []string{other},
		Mode: catalog.ImportOverwritePartitions})
	if err == nil || !errdefs.Is(err, errdefs.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), `column "country" of table sales.transactions is missing from the file`) ||
		!strings.HasSuffix(err.Error(), "use --mode replace to replace the table with new columns") {
		t.Errorf("schema change: %v", err)
	}
	_, err = f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Current: &part, Sources: []string{b},
		Mode: catalog.ImportOverwritePartitions, PartitionBy: []string{"id"}})
	if err == nil || !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "--partitioned-by applies only") {
		t.Errorf("partition by: %v", err)
	}
}

func TestReplaceChangesSchema(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	src := writeFile(t, dir, "a.csv", "id,amount,country,old\n1,1.5,DE,x\n2,2.5,FR,y\n")
	e1 := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}, PartitionBy: []string{"country"}}).Entry
	info1 := describe(t, f, e1)

	// The model now returns country first, id as int32 (fits the long),
	// amount as a string (a new column of the same name), a new column, and
	// no "old".
	next := writeIPC(t, dir, "v2.arrow", []col{
		{"country", arrow.BinaryTypes.String, []any{"IT", "FR"}},
		{"id", arrow.PrimitiveTypes.Int32, []any{7, 8}},
		{"amount", arrow.BinaryTypes.String, []any{"lots", nil}},
		{"extra", arrow.PrimitiveTypes.Int64, []any{70, 80}},
	})
	e2 := mustImport(t, f, catalog.ImportSpec{Current: &e1, Sources: []string{next}, Mode: catalog.ImportReplace}).Entry
	info := describe(t, f, e2)
	if got := schemaString(info); got != "country:string id:long amount:string extra:long" {
		t.Errorf("schema = %s", got)
	}
	ids := map[string]int{}
	for _, c := range info.Schema {
		ids[c.Name] = c.ID
	}
	if ids["country"] != 3 || ids["id"] != 1 || ids["amount"] != 5 || ids["extra"] != 6 {
		t.Errorf("field ids = %v", ids)
	}
	if e2.SchemaID == e1.SchemaID || info.TableUUID != info1.TableUUID || info.Snapshots != 2 ||
		info.Snapshot.Operation != "overwrite" || len(info.PartitionSpec) != 1 || info.PartitionSpec[0].SourceColumn != "country" {
		t.Errorf("after replace: entry %+v, info %+v", e2, info)
	}
	if !strings.Contains(e2.MetadataLocation, "/metadata/00002-") {
		t.Errorf("schema and snapshot should be one metadata file: %s", e2.MetadataLocation)
	}
	eqStrings(t, "rows", scan(t, e2, "country", "id", "amount", "extra"), []string{"FR|8|(null)|80", "IT|7|lots|70"})
	eqStrings(t, "old state", scan(t, e1, "id", "old"), []string{"1|x", "2|y"})
	changes, err := f.SchemaDiff(context.Background(), e1, e2)
	if err != nil {
		t.Fatal(err)
	}
	var diff []string
	for _, c := range changes {
		diff = append(diff, c.Change+" "+c.Column)
	}
	eqStrings(t, "schema diff", diff, []string{"type amount", "removed old", "added extra"})

	// Appends now take the new columns, and refuse the old ones.
	more := writeFile(t, dir, "more.csv", "country,id,amount,extra\nDE,9,some,90\n")
	e3 := mustImport(t, f, catalog.ImportSpec{Current: &e2, Sources: []string{more}}).Entry
	eqStrings(t, "appended", scan(t, e3, "id"), []string{"7", "8", "9"})
	if _, err := f.Import(context.Background(), catalog.ImportSpec{Ident: salesIdent, Current: &e3, Sources: []string{src}}); !errdefs.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("append of the old columns: %v", err)
	}

	// Without the partition column the table becomes unpartitioned.
	flat := writeFile(t, dir, "flat.csv", "id\n1\n")
	e4 := mustImport(t, f, catalog.ImportSpec{Current: &e3, Sources: []string{flat}, Mode: catalog.ImportReplace}).Entry
	info = describe(t, f, e4)
	if len(info.PartitionSpec) != 0 || schemaString(info) != "id:long" || info.Files[0].Partition != nil {
		t.Errorf("unpartitioned: %+v", info)
	}
	eqStrings(t, "rows", scan(t, e4, "id"), []string{"1"})
}

func TestReplaceRepartitions(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	src := writeParquet(t, dir, "a.parquet",
		col{"n", arrow.PrimitiveTypes.Int32, []any{1, 2}}, col{"country", arrow.BinaryTypes.String, []any{"DE", "FR"}})
	e1 := mustImport(t, f, catalog.ImportSpec{Sources: []string{src}, PartitionBy: []string{"country"}}).Entry

	// Same columns, new spec.
	e2 := mustImport(t, f, catalog.ImportSpec{Current: &e1, Sources: []string{src}, Mode: catalog.ImportReplace,
		PartitionBy: []string{"bucket(2,n)"}}).Entry
	info := describe(t, f, e2)
	if len(info.PartitionSpec) != 1 || info.PartitionSpec[0].Transform != "bucket[2]" || e2.SchemaID != e1.SchemaID {
		t.Errorf("spec = %+v, schema %d", info.PartitionSpec, e2.SchemaID)
	}
	for _, df := range info.Files {
		if _, ok := df.Partition["n_bucket"]; !ok {
			t.Errorf("file %s is not bucketed: %v", df.Path, df.Partition)
		}
	}

	// int → long is a promotion: the column keeps its id.
	wide := writeParquet(t, dir, "b.parquet",
		col{"n", arrow.PrimitiveTypes.Int64, []any{1 << 40}}, col{"country", arrow.BinaryTypes.String, []any{"IT"}})
	e3 := mustImport(t, f, catalog.ImportSpec{Current: &e2, Sources: []string{wide}, Mode: catalog.ImportReplace}).Entry
	info = describe(t, f, e3)
	if schemaString(info) != "n:long country:string" || info.Schema[0].ID != 1 || len(info.PartitionSpec) != 1 {
		t.Errorf("promoted: %+v", info)
	}
	eqStrings(t, "rows", scan(t, e3, "n", "country"), []string{"1099511627776|IT"})

	// A bad spec fails before anything is written.
	_, err := f.Import(context.Background(), catalog.ImportSpec{Ident: salesIdent, Current: &e3, Sources: []string{wide},
		Mode: catalog.ImportReplace, PartitionBy: []string{"day(country)"}})
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "day cannot be applied") {
		t.Errorf("bad spec: %v", err)
	}
}

// A replace that writes no rows into a table without any still gives the
// table its new columns, in a metadata file that follows the old one.
func TestReplaceEmptyChangesSchema(t *testing.T) {
	t.Parallel()
	f := newTestFormat(t)
	dir := t.TempDir()
	e1 := mustImport(t, f, catalog.ImportSpec{Sources: []string{
		writeIPC(t, dir, "a.arrow", []col{{"id", arrow.PrimitiveTypes.Int64, nil}})}}).Entry
	e2 := mustImport(t, f, catalog.ImportSpec{Current: &e1, Mode: catalog.ImportReplace, Sources: []string{
		writeIPC(t, dir, "b.arrow", []col{{"name", arrow.BinaryTypes.String, nil}})}}).Entry
	info := describe(t, f, e2)
	if schemaString(info) != "name:string" || info.Snapshot != nil || !strings.Contains(e2.MetadataLocation, "/metadata/00002-") {
		t.Errorf("entry %+v, info %+v", e2, info)
	}
	tbl, _, err := f.load(context.Background(), salesIdent, e2)
	if err != nil {
		t.Fatal(err)
	}
	if log := slices.Collect(tbl.Metadata().PreviousFiles()); len(log) != 1 || log[0].MetadataFile != e1.MetadataLocation {
		t.Errorf("metadata log = %+v", log)
	}
}
