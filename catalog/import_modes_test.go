package catalog_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// writeArrowFile writes ids and countries as an Arrow IPC file, the way a
// pipeline model's output reaches the catalog.
func writeArrowFile(t *testing.T, path string, ids []int64, countries []string) string {
	t.Helper()
	mem := memory.NewGoAllocator()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "country", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues(ids, nil)
	b.Field(1).(*array.LargeStringBuilder).AppendValues(countries, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(sc))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// The executor's path: a model's Arrow IPC output materialized on a branch
// by overwrite-partitions or replace, one commit each.
func TestImportModes(t *testing.T) { eachWarehouse(t, importModes) }

func importModes(t *testing.T, dir string, svc *catalog.Local) {
	ctx := context.Background()
	tbl := catalog.TableIdent{Namespace: "sales", Name: "tx"}
	if _, err := svc.CreateBranch(ctx, "run.1", catalog.Ref{Name: "main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateNamespace(ctx, "run.1", "sales", catalog.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	imp := func(req catalog.ImportRequest) (*catalog.ImportResult, error) {
		req.Branch, req.Table = "run.1", tbl
		return svc.ImportTable(ctx, req)
	}
	countries := func() string {
		t.Helper()
		info, err := svc.GetTable(ctx, catalog.Ref{Name: "run.1"}, tbl)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, f := range info.Files {
			parts = append(parts, f.Partition["country"])
		}
		return strings.Join(parts, ",")
	}

	first := writeArrowFile(t, filepath.Join(dir, "1.arrow"), []int64{1, 2, 3}, []string{"FR", "IT", "FR"})
	res, err := imp(catalog.ImportRequest{Sources: []string{first}, Mode: catalog.ImportOverwritePartitions,
		PartitionBy: []string{"country"}})
	if err != nil || !res.Created || res.Rows != 3 || res.Commit == nil {
		t.Fatalf("create: %+v, %v", res, err)
	}
	second := writeArrowFile(t, filepath.Join(dir, "2.arrow"), []int64{4}, []string{"FR"})
	res, err = imp(catalog.ImportRequest{Sources: []string{second}, Mode: catalog.ImportOverwritePartitions,
		Commit: catalog.CommitOptions{Properties: map[string]string{"lakehouse.run": "r1"}}})
	if err != nil || res.Commit == nil || res.Commit.Properties["lakehouse.run"] != "r1" {
		t.Fatalf("overwrite: %+v, %v", res, err)
	}
	info, err := svc.GetTable(ctx, catalog.Ref{Name: "run.1"}, tbl)
	if err != nil || info.RowCount != 2 || countries() != "FR,IT" {
		t.Fatalf("after overwrite: %+v (%s), %v", info, countries(), err)
	}

	// Partition fields on an existing table: only a replace takes them.
	_, err = imp(catalog.ImportRequest{Sources: []string{second}, PartitionBy: []string{"id"}})
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "use --mode replace") {
		t.Errorf("append with --partitioned-by: %v", err)
	}
	res, err = imp(catalog.ImportRequest{Sources: []string{first}, Mode: catalog.ImportReplace, PartitionBy: []string{"bucket(4,id)"}})
	if err != nil || res.Commit == nil {
		t.Fatalf("replace with a new spec: %+v, %v", res, err)
	}
	if info, _ = svc.GetTable(ctx, catalog.Ref{Name: "run.1"}, tbl); len(info.PartitionSpec) != 1 || info.PartitionSpec[0].Name != "id_bucket" {
		t.Errorf("spec after replace: %+v", info.PartitionSpec)
	}

	// A replace with other columns gives the table the new ones.
	csv := filepath.Join(dir, "v2.csv")
	if err := os.WriteFile(csv, []byte("id,city\n1,Rome\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := imp(catalog.ImportRequest{Sources: []string{csv}, Mode: catalog.ImportReplace}); err != nil {
		t.Fatal(err)
	}
	info, err = svc.GetTable(ctx, catalog.Ref{Name: "run.1"}, tbl)
	if err != nil || len(info.Schema) != 2 || info.Schema[1].Name != "city" || info.RowCount != 1 || len(info.PartitionSpec) != 1 {
		t.Fatalf("after the schema change: %+v, %v", info, err)
	}

	if _, err := imp(catalog.ImportRequest{Sources: []string{csv}, Mode: "upsert"}); err == nil ||
		err.Error() != `unknown import mode "upsert"; use append, replace or overwrite-partitions` {
		t.Errorf("unknown mode: %v", err)
	}
}
