package catalog_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
)

// Benchmarks run on the bbolt store with fsync on, as the CLI uses it.

func openBoltService(b *testing.B) *catalog.Local {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "catalog.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return newFakeService(b, s)
}

// BenchmarkBranchCreate measures creating a branch from a head holding 1
// or 10,000 tables: it must cost the same (no data is copied).
func BenchmarkBranchCreate(b *testing.B) {
	for _, n := range []int{1, 10000} {
		b.Run(fmt.Sprintf("tables=%d", n), func(b *testing.B) {
			ctx := context.Background()
			svc := openBoltService(b)
			ch := catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{}}
			for i := range n {
				ch.Tables[ident(fmt.Sprintf("t%05d", i))] = &catalog.TableEntry{
					MetadataLocation: fmt.Sprintf("/warehouse/default/t%05d-0b9c/metadata/00001-3f0e.metadata.json", i)}
			}
			if _, err := svc.CommitTables(ctx, "dev.a", "", ch, catalog.CommitOptions{}); err != nil {
				b.Fatal(err)
			}
			from := catalog.Ref{Name: "dev.a"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := svc.CreateBranch(ctx, catalog.BranchName(fmt.Sprintf("u.b%d", i)), from); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCommit measures catalog commits on one branch: the store
// transaction that points the branch at a new commit whose table metadata
// is already written. "writers=8" runs eight goroutines on different
// tables, each committing against the head it read (rebasing as needed).
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	b.Run("writers=1", func(b *testing.B) {
		svc := openBoltService(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ch := set(map[string]string{"t": fmt.Sprintf("/w/default/t/metadata/%05d.metadata.json", i)})
			if _, err := svc.CommitTables(ctx, "dev.a", "", ch, catalog.CommitOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	})
	b.Run("writers=8", func(b *testing.B) {
		svc := openBoltService(b)
		var w atomic.Int64
		b.SetParallelism(4) // 4 × GOMAXPROCS(2) = 8 goroutines on this machine
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			table := fmt.Sprintf("w%d", w.Add(1))
			i := 0
			for pb.Next() {
				i++
				base := head(b, svc, "dev.a")
				ch := set(map[string]string{table: fmt.Sprintf("/w/default/%s/metadata/%05d.metadata.json", table, i)})
				if _, err := svc.CommitTables(ctx, "dev.a", base, ch, catalog.CommitOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	})
}
