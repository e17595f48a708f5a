package bolt

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// TestGroupCommit holds the committer with one Update while others queue,
// so that they share the next transaction, and checks that the ones that
// fail, panic or exit their goroutine leave nothing while the rest commit.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	s := openT(t, tempPath(t), Options{NoSync: true})
	ctx := t.Context()
	seed := &catalog.Commit{Height: 1, Tree: "t", Time: time.Unix(0, 0).UTC()}
	seed.ID = seed.ComputeID()
	if err := s.Update(ctx, func(tx catalog.Tx) error {
		return errors.Join(
			tx.PutCommit(seed),
			tx.PutRef(catalog.KindBranch, "main", seed.ID),
			tx.PutRecord("run", "shared", []byte("old")),
			tx.PutRecord("run", "keep", []byte("keep")),
		)
	}); err != nil {
		t.Fatal(err)
	}

	// The gate holds the committer until every Update below is queued.
	running, release := make(chan struct{}), make(chan struct{})
	gateDone := make(chan error, 1)
	go func() {
		gateDone <- s.Update(ctx, func(catalog.Tx) error {
			close(running)
			<-release
			return nil
		})
	}()
	<-running

	const n = 12
	failure := errors.New("fn failed")
	var (
		queued  atomic.Int32
		wg      sync.WaitGroup
		results [n]error
		txs     [n]*bolt.Tx
	)
	// Every third Update succeeds; the others change everything and then
	// fail in one of three ways.
	for i := range n {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil && r != "boom" {
					t.Errorf("update %d: panic %v", i, r)
				}
			}()
			queued.Add(1)
			results[i] = s.Update(ctx, func(txn catalog.Tx) error {
				txs[i] = txn.(*tx).tx
				if i%3 == 0 {
					return errors.Join(
						txn.PutRecord("ok", fmt.Sprint(i), []byte("v")),
						txn.PutRef(catalog.KindBranch, fmt.Sprintf("u.b%d", i), seed.ID),
					)
				}
				c := &catalog.Commit{Height: 2, Parents: []catalog.CommitID{seed.ID}, Tree: "t", Message: fmt.Sprint(i)}
				c.ID = c.ComputeID()
				tree := catalog.NewTree()
				tree.Namespaces[catalog.Namespace(fmt.Sprintf("ns%d", i))] = catalog.NamespaceEntry{}
				if err := errors.Join(
					txn.PutCommit(c),
					txn.PutTree(tree.ComputeID(), tree),
					txn.PutRef(catalog.KindBranch, "main", c.ID),
					txn.PutRef(catalog.KindTag, fmt.Sprint("v", i), c.ID),
					txn.PutRecord("run", "shared", []byte(fmt.Sprint(i))),
					txn.DeleteRecord("run", "keep"),
					txn.PutRecord(fmt.Sprint("kind", i), "k", nil),
				); err != nil {
					t.Errorf("update %d: %v", i, err)
				}
				switch i % 3 {
				case 1:
					return failure
				default:
					if i%2 == 0 {
						panic("boom")
					}
					runtime.Goexit() // as t.Fatal in fn would
				}
				return nil
			})
		})
	}
	for queued.Load() < n {
		runtime.Gosched()
	}
	time.Sleep(50 * time.Millisecond) // let them block on the queue
	close(release)
	wg.Wait()
	if err := <-gateDone; err != nil {
		t.Fatal(err)
	}

	for i := range n {
		if i%3 == 0 {
			if results[i] != nil {
				t.Errorf("update %d: %v", i, results[i])
			}
		} else if i%3 == 1 && results[i] != failure {
			t.Errorf("update %d returned %v, want its own error", i, results[i])
		}
		if txs[i] != txs[0] {
			t.Errorf("updates 0 and %d ran in different transactions", i)
		}
	}

	if err := s.View(ctx, func(tx catalog.Tx) error {
		if id, err := tx.GetRef(catalog.KindBranch, "main"); err != nil || id != seed.ID {
			t.Errorf("main = %s, %v; want the seed commit", id, err)
		}
		if tags, _ := tx.ListRefs(catalog.KindTag); len(tags) != 0 {
			t.Errorf("tags of failed updates: %v", tags)
		}
		if branches, _ := tx.ListRefs(catalog.KindBranch); len(branches) != 1+n/3 {
			t.Errorf("branches = %v, want main and %d others", branches, n/3)
		}
		if ids, _ := tx.FindCommits("", 0); len(ids) != 1 {
			t.Errorf("commits = %v, want only the seed", ids)
		}
		for rec, want := range map[string]string{"shared": "old", "keep": "keep"} {
			if v, err := tx.GetRecord("run", rec); err != nil || string(v) != want {
				t.Errorf("record %s = %q, %v; want %q", rec, v, err, want)
			}
		}
		var oks int
		if err := tx.ListRecords("ok", "", func(string, []byte) error { oks++; return nil }); err != nil || oks != n/3 {
			t.Errorf("ok records = %d, %v; want %d", oks, err, n/3)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Record buckets created by failed updates were dropped.
	if err := s.db.View(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketRecords).ForEachBucket(func(k []byte) error {
			if strings.HasPrefix(string(k), "kind") {
				t.Errorf("bucket records/%s of a failed update remains", k)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBatchPoisoned drives runBatch directly: when a failed fn cannot be
// undone, the Updates before it in the batch fail and the ones after it run
// in a new transaction.
func TestBatchPoisoned(t *testing.T) {
	t.Parallel()
	s := openT(t, tempPath(t), Options{NoSync: true})
	// caller plays the Update side of one request.
	caller := func(key string, res outcome, got chan<- error) *request {
		r := &request{turn: make(chan turn, 1), finished: make(chan outcome, 1), committed: make(chan error, 1)}
		go func() {
			tn := <-r.turn
			if tn.err != nil {
				got <- tn.err
				return
			}
			t := &tx{tx: tn.tx}
			if err := t.PutRecord("run", key, []byte(key)); err != nil {
				panic(err)
			}
			r.finished <- res
			if res == fnSucceeded {
				got <- <-r.committed
			} else {
				got <- nil
			}
		}()
		return r
	}
	before, poisoned, after := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	s.runBatch([]*request{
		caller("before", fnSucceeded, before),
		caller("poisoned", fnPoisoned, poisoned),
		caller("after", fnSucceeded, after),
	})
	if err := <-before; !errors.Is(err, errdefs.ErrInternal) {
		t.Errorf("update before the poisoned one: %v, want ErrInternal", err)
	}
	<-poisoned
	if err := <-after; err != nil {
		t.Errorf("update after the poisoned one: %v", err)
	}
	if err := s.View(t.Context(), func(tx catalog.Tx) error {
		var keys []string
		err := tx.ListRecords("run", "", func(k string, _ []byte) error { keys = append(keys, k); return nil })
		if len(keys) != 1 || keys[0] != "after" {
			t.Errorf("records = %q, want only the one after the poisoned batch", keys)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
