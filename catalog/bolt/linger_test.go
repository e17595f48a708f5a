package bolt

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// TestCommitStats checks the group commit's counts: a lone writer has a
// batch of its own for each Update (and never lingers), while writers that
// come back one after the other share batches.
func TestCommitStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openT(t, tempPath(t), Options{NoSync: true})
	before := s.CommitStats()
	var head catalog.CommitID
	for i := range 20 {
		var err error
		if head, err = commitOnce(ctx, s, "alone.b", head, i); err != nil {
			t.Fatal(err)
		}
	}
	got := s.CommitStats()
	if d := (CommitStats{Batches: got.Batches - before.Batches, Updates: got.Updates - before.Updates}); d != (CommitStats{Batches: 20, Updates: 20}) {
		t.Fatalf("20 Updates of one writer: %+v, want 20 batches of one", d)
	}

	const writers, each = 8, 25
	before = s.CommitStats()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var head catalog.CommitID
			for i := range each {
				var err error
				if head, err = commitOnce(ctx, s, fmt.Sprintf("w.b%d", w), head, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got = s.CommitStats()
	batches, updates := got.Batches-before.Batches, got.Updates-before.Updates
	if updates != writers*each || batches < 1 || batches > updates {
		t.Fatalf("%d writers × %d Updates: %d Updates in %d batches", writers, each, updates, batches)
	}
	t.Logf("%d writers × %d Updates shared %d batches (%.1f a batch)", writers, each, batches, float64(updates)/float64(batches))
}
