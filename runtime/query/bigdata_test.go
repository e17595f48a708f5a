package query_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/catalog"
)

// lineitemSchema is a TPC-H-lineitem-like table: ints, floats, strings,
// dates.
var lineitemSchema = arrow.NewSchema([]arrow.Field{
	{Name: "l_orderkey", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "l_quantity", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "l_extendedprice", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "l_discount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "l_tax", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "l_returnflag", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "l_linestatus", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "l_shipdate", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "l_comment", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

var comments = []string{"carefully final deposits", "quickly ironic packages", "slyly even requests", "blithely regular accounts",
	"furiously bold theodolites", "pending pinto beans", "express dolphins nag", "silent foxes sleep"}

// writeLineitem writes rows rows of deterministic pseudo-random lineitems
// to path, in row groups of 1Mi rows.
func writeLineitem(t testing.TB, path string, rows int) {
	t.Helper()
	const batch = 64 * 1024
	start := arrow.Date32FromTime(mustDate("1992-01-01"))
	x := uint64(42)
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	done := 0
	writeParquet(t, path, lineitemSchema, func(b *array.RecordBuilder) bool {
		if done >= rows {
			return false
		}
		n := min(batch, rows-done)
		ok := b.Field(0).(*array.Int64Builder)
		qty := b.Field(1).(*array.Float64Builder)
		price := b.Field(2).(*array.Float64Builder)
		disc := b.Field(3).(*array.Float64Builder)
		tax := b.Field(4).(*array.Float64Builder)
		rf := b.Field(5).(*array.StringBuilder)
		ls := b.Field(6).(*array.StringBuilder)
		sd := b.Field(7).(*array.Date32Builder)
		cm := b.Field(8).(*array.StringBuilder)
		for i := 0; i < n; i++ {
			r := next()
			id := done + i
			ok.Append(int64(id / 4))
			q := float64(r%50 + 1)
			qty.Append(q)
			price.Append(q * float64(900+r%100000/10) / 1)
			disc.Append(float64(r/50%11) / 100)
			tax.Append(float64(r/550%9) / 100)
			rf.Append([]string{"A", "N", "R"}[r/4950%3])
			day := int32(r / 14850 % 2526)
			if day < 1250 {
				ls.Append("F")
			} else {
				ls.Append("O")
			}
			sd.Append(start + arrow.Date32(day))
			cm.Append(comments[r/37512%8])
		}
		done += n
		return true
	})
}

func mustDate(s string) (t timeT) {
	t, err := parseDate(s)
	if err != nil {
		panic(err)
	}
	return t
}

// bigTable imports a lineitem table of rows rows into a fresh catalog
// under dir as bench.lineitem on main, and returns the service and the
// Parquet file.
func bigTable(t testing.TB, dir string, rows int) (*catalog.Local, string) {
	t.Helper()
	ctx := context.Background()
	src := filepath.Join(dir, fmt.Sprintf("lineitem-%d.parquet", rows))
	if _, err := os.Stat(src); err != nil {
		writeLineitem(t, src+".tmp", rows)
		if err := os.Rename(src+".tmp", src); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "catalog"), 0o755); err != nil {
		t.Fatal(err)
	}
	svc := openService(t, filepath.Join(dir, "catalog"), nil)
	const br = catalog.BranchName("bench.load")
	if _, err := svc.CreateBranch(ctx, br, catalog.Ref{Name: "main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateNamespace(ctx, br, "bench", catalog.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ImportTable(ctx, catalog.ImportRequest{Branch: br, Table: catalog.TableIdent{Namespace: "bench", Name: "lineitem"}, Sources: []string{src}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: string(br)}, Into: "main"}); err != nil {
		t.Fatal(err)
	}
	return svc, src
}

type timeT = time.Time

func parseDate(s string) (time.Time, error) { return time.Parse("2006-01-02", s) }
