package bolt

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// commitOnce is one catalog commit as the catalog makes it: a new tree, a
// commit on top of parent, and the branch moved, in one synced Update.
func commitOnce(ctx context.Context, s *Store, branch string, parent catalog.CommitID, n int) (catalog.CommitID, error) {
	tree := catalog.NewTree()
	tree.Namespaces[catalog.DefaultNamespace] = catalog.NamespaceEntry{}
	tree.Tables[catalog.TableIdent{Namespace: catalog.DefaultNamespace, Name: "events"}] = catalog.TableEntry{
		MetadataLocation: fmt.Sprintf("warehouse/default/events/metadata/%s-%08d.metadata.json", branch, n),
		TableUUID:        "5f3c1b0e-9d7a-4c61-8f0e-2b1d3c4e5f60",
		SnapshotID:       int64(n),
		SchemaID:         1,
	}
	tid := tree.ComputeID()
	c := &catalog.Commit{Height: uint64(n) + 1, Tree: tid, Author: "bench", Message: "append",
		Time: time.Unix(1_700_000_000, int64(n)).UTC()}
	if parent != "" {
		c.Parents = []catalog.CommitID{parent}
	}
	c.ID = c.ComputeID()
	err := s.Update(ctx, func(tx catalog.Tx) error {
		if err := tx.PutTree(tid, tree); err != nil {
			return err
		}
		if err := tx.PutCommit(c); err != nil {
			return err
		}
		return tx.PutRef(catalog.KindBranch, branch, c.ID)
	})
	return c.ID, err
}

// BenchmarkCommit measures catalog commits with fdatasync on, one writer.
func BenchmarkCommit(b *testing.B) {
	s := openT(b, tempPath(b), Options{})
	ctx := context.Background()
	var head catalog.CommitID
	n := 0
	for b.Loop() {
		var err error
		if head, err = commitOnce(ctx, s, "bench.main", head, n); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// BenchmarkCommitParallel is BenchmarkCommit from 8 goroutines, each
// committing to its own branch.
func BenchmarkCommitParallel(b *testing.B) {
	s := openT(b, tempPath(b), Options{})
	ctx := context.Background()
	var next atomic.Int64
	// RunParallel starts parallelism*GOMAXPROCS goroutines: 8 when
	// GOMAXPROCS divides 8, otherwise the next multiple of GOMAXPROCS.
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((8 + procs - 1) / procs)
	b.RunParallel(func(pb *testing.PB) {
		branch := fmt.Sprintf("bench.b%d", next.Add(1))
		var head catalog.CommitID
		n := 0
		for pb.Next() {
			var err error
			if head, err = commitOnce(ctx, s, branch, head, n); err != nil {
				b.Error(err)
				return
			}
			n++
		}
	})
}
