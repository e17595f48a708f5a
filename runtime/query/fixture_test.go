package query_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
	"github.com/lakehouse-dev/lakehouse/internal/warehousetest"
)

// fixture is a catalog on real parts (bbolt, Iceberg tables written by
// iceberg-go) with a few small tables:
//
//	sales.tx            id, usd, country, day — partitioned by day; days 1–2
//	                    imported, tagged v1, then day 3 (two snapshots)
//	sales.VipCustomers  id, "Full Name", country
//	default.events      id, kind, ts, amount
//	sales.empty_tx      the columns of sales.tx, no rows
type fixture struct {
	svc  *catalog.Local
	dir  string
	v1   *catalog.Commit // main after the first import
	head *catalog.Commit // main after the second import
	// between is a time after v1 and before head.
	between time.Time
}

// scans plans the scans of the test tables through the Iceberg format, as
// the CLI wires it. A Format opens any table state its catalog entry
// names, so one serves every test catalog of a local warehouse; on S3
// (s3Warehouse) openService sets it to the format of the catalog it
// opens, whose scans go through the scan cache as the CLI's do.
var scans catalog.TableScanner = new(iceberg.Format)

// s3Warehouse runs the suite on an S3 warehouse (a MinIO the test
// starts) instead of a local one: LAKEHOUSE_TEST_WAREHOUSE=s3, a step of
// scripts/test.sh.
var s3Warehouse = os.Getenv("LAKEHOUSE_TEST_WAREHOUSE") == "s3"

// packageMinIO serves the S3 mode's warehouses (s3Warehouse), a prefix
// of it for each test: one MinIO for the test binary, started by
// TestMain, instead of one a test (32 MinIOs cost the S3 step about 25 s
// of CPU).
var packageMinIO *miniotest.Server

func TestMain(m *testing.M) { warehousetest.Main(m, &packageMinIO) }

// s3Format is a Format over a fresh prefix of the package's MinIO, its
// scans read through a scan cache in dir.
func s3Format(t testing.TB, dir string) *iceberg.Format {
	t.Helper()
	st := warehousetest.OnS3(t, packageMinIO)
	var err error
	cache, err := scancache.Open(filepath.Join(dir, "cache", "scan"), 0)
	if err != nil {
		t.Fatal(err)
	}
	cache.KeepRecent(10 * time.Minute)
	format, err := iceberg.New(iceberg.Options{Storage: st, Fetcher: &iceberg.CacheFetcher{Cache: cache, Source: st}})
	if err != nil {
		t.Fatal(err)
	}
	scans = format
	t.Cleanup(func() { scans = new(iceberg.Format) })
	return format
}

func openService(t testing.TB, dir string, now func() time.Time) *catalog.Local {
	t.Helper()
	store, err := bolt.Open(filepath.Join(dir, "catalog.db"), bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var format *iceberg.Format
	if s3Warehouse {
		format = s3Format(t, dir)
	} else {
		var err error
		if format, err = iceberg.New(iceberg.Options{Warehouse: filepath.Join(dir, "warehouse")}); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := catalog.NewLocal(context.Background(), store, format, catalog.LocalOptions{Author: "test", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func txCSV(days []int) string {
	var b strings.Builder
	b.WriteString("id,usd,country,day\n")
	countries := []string{"IT", "FR", "DE", "ES"}
	for _, d := range days {
		for i := 0; i < 25; i++ {
			id := d*100 + i
			usd := fmt.Sprintf("%d.%02d", (id*37)%500, id%100)
			if i == 7 {
				usd = "" // a null
			}
			fmt.Fprintf(&b, "%d,%s,%s,2026-01-%02d\n", id, usd, countries[(id*7)%4], d)
		}
	}
	return b.String()
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Minute); return clock }
	svc := openService(t, dir, now)
	f := &fixture{svc: svc, dir: dir}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const br = catalog.BranchName("test.load")
	must(svc.CreateBranch(ctx, br, catalog.Ref{Name: "main"}))
	must(svc.CreateNamespace(ctx, br, "sales", catalog.CommitOptions{}))
	tx := catalog.TableIdent{Namespace: "sales", Name: "tx"}
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: br, Table: tx, PartitionBy: []string{"day"},
		Sources: []string{writeFile(t, filepath.Join(dir, "src", "tx1.csv"), txCSV([]int{1, 2}))}}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: br, Table: catalog.TableIdent{Namespace: "sales", Name: "VipCustomers"},
		Sources: []string{writeFile(t, filepath.Join(dir, "src", "vip.csv"),
			"id,Full Name,country\n1,Ada Lovelace,IT\n2,Grace Hopper,FR\n3,Alan Turing,DE\n4,Edsger Dijkstra,\n")}}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: br, Table: catalog.TableIdent{Namespace: "default", Name: "events"},
		Sources: []string{writeFile(t, filepath.Join(dir, "src", "events.csv"),
			"id,kind,ts,amount\n1,click,2026-01-01 10:00:00,1.5\n2,view,2026-01-01 11:00:00,\n3,click,2026-01-02 09:30:00,4\n4,buy,2026-01-03 12:00:00,99.95\n")}}))
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: br, Table: catalog.TableIdent{Namespace: "sales", Name: "empty_tx"},
		Sources: []string{emptyParquet(t, filepath.Join(dir, "src", "empty.parquet"))}}))
	res, err := svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: string(br)}, Into: "main"})
	must(res, err)
	f.v1 = res.Commit
	must(svc.CreateTag(ctx, "v1", catalog.Ref{Name: "main"}))
	f.between = now()
	must(svc.ImportTable(ctx, catalog.ImportRequest{Branch: br, Table: tx,
		Sources: []string{writeFile(t, filepath.Join(dir, "src", "tx2.csv"), txCSV([]int{3}))}}))
	res, err = svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: string(br)}, Into: "main"})
	must(res, err)
	f.head = res.Commit
	return f
}

func emptyParquet(t testing.TB, path string) string {
	writeParquet(t, path, txSchema, func(*array.RecordBuilder) bool { return false })
	return path
}
