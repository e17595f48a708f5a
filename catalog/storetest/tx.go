package storetest

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func testInvalidArguments(t *testing.T, s catalog.Store) {
	c := newCommit("c")
	tests := []struct {
		name string
		fn   func(tx catalog.Tx) error
	}{
		{"GetRef unknown kind", func(tx catalog.Tx) error { _, err := tx.GetRef("remote", "x"); return err }},
		{"PutRef unknown kind", func(tx catalog.Tx) error { return tx.PutRef("remote", "x", c.ID) }},
		{"DeleteRef unknown kind", func(tx catalog.Tx) error { return tx.DeleteRef("remote", "x") }},
		{"ListRefs unknown kind", func(tx catalog.Tx) error { _, err := tx.ListRefs(""); return err }},
		{"PutRef empty name", func(tx catalog.Tx) error { return tx.PutRef(catalog.KindBranch, "", c.ID) }},
		{"PutRef empty commit", func(tx catalog.Tx) error { return tx.PutRef(catalog.KindBranch, "main", "") }},
		{"PutRecord empty kind", func(tx catalog.Tx) error { return tx.PutRecord("", "k", nil) }},
		{"PutRecord empty key", func(tx catalog.Tx) error { return tx.PutRecord("run", "", nil) }},
		{"GetRecord empty kind", func(tx catalog.Tx) error { _, err := tx.GetRecord("", "k"); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantClass(t, tc.name, s.Update(t.Context(), tc.fn), errdefs.ErrInvalidArgument)
		})
	}
}

// testReadYourWrites checks that an Update sees its own writes before it
// commits, and that a View sees them after.
func testReadYourWrites(t *testing.T, s catalog.Store) {
	old := newCommit("old")
	update(t, s, func(tx catalog.Tx) error {
		if err := tx.PutRef(catalog.KindBranch, "gone", old.ID); err != nil {
			return err
		}
		return tx.PutRecord("run", "gone", []byte("x"))
	})
	c := newCommit("new", old.ID)
	tree := sampleTree(4)
	tid := tree.ComputeID()
	check := func(tx catalog.Tx) error {
		if id, err := tx.GetRef(catalog.KindBranch, "main"); err != nil || id != c.ID {
			t.Errorf("GetRef(main) = %s, %v; want %s", id, err, c.ID)
		}
		if refs, _ := tx.ListRefs(catalog.KindBranch); len(refs) != 1 || refs[0].Name != "main" {
			t.Errorf("ListRefs = %v, want only main", refs)
		}
		if _, err := tx.GetRef(catalog.KindBranch, "gone"); !errdefs.Is(err, errdefs.ErrNotFound) {
			t.Errorf("GetRef of a deleted ref: %v", err)
		}
		if got, err := tx.GetCommit(c.ID); err != nil || got.ID != c.ID {
			t.Errorf("GetCommit = %v, %v", got, err)
		}
		if ids, _ := tx.FindCommits(string(c.ID[:10]), 0); !slices.Equal(ids, []catalog.CommitID{c.ID}) {
			t.Errorf("FindCommits = %v, want [%s]", ids, c.ID)
		}
		if _, err := tx.GetTree(tid); err != nil {
			t.Errorf("GetTree: %v", err)
		}
		if v, err := tx.GetRecord("run", "r"); err != nil || string(v) != "v" {
			t.Errorf("GetRecord = %q, %v", v, err)
		}
		if got := listRecords(t, tx, "run", ""); !slices.Equal(got, []kv{{"r", "v"}}) {
			t.Errorf("ListRecords = %q, want [r=v]", got)
		}
		return nil
	}
	update(t, s, func(tx catalog.Tx) error {
		for _, err := range []error{
			tx.PutCommit(c),
			tx.PutTree(tid, tree),
			tx.PutRef(catalog.KindBranch, "main", c.ID),
			tx.DeleteRef(catalog.KindBranch, "gone"),
			tx.PutRecord("run", "r", []byte("v")),
			tx.DeleteRecord("run", "gone"),
		} {
			if err != nil {
				return err
			}
		}
		return check(tx)
	})
	view(t, s, check)
}

// state is what the rollback and view tests read back from a store.
type state struct {
	branches, tags []catalog.RefEntry
	commits        []catalog.CommitID
	trees          map[catalog.TreeID]bool
	records        []kv
}

func readState(t *testing.T, s catalog.Store, trees ...catalog.TreeID) state {
	t.Helper()
	st := state{trees: map[catalog.TreeID]bool{}}
	view(t, s, func(tx catalog.Tx) error {
		var err error
		if st.branches, err = tx.ListRefs(catalog.KindBranch); err != nil {
			return err
		}
		if st.tags, err = tx.ListRefs(catalog.KindTag); err != nil {
			return err
		}
		if st.commits, err = tx.FindCommits("", 0); err != nil {
			return err
		}
		for _, id := range trees {
			_, err := tx.GetTree(id)
			st.trees[id] = err == nil
		}
		st.records = listRecords(t, tx, "run", "")
		return nil
	})
	return st
}

func sameState(t *testing.T, got, want state) {
	t.Helper()
	if !slices.Equal(got.branches, want.branches) || !slices.Equal(got.tags, want.tags) {
		t.Errorf("refs = %v %v, want %v %v", got.branches, got.tags, want.branches, want.tags)
	}
	if !slices.Equal(got.commits, want.commits) {
		t.Errorf("commits = %v, want %v", got.commits, want.commits)
	}
	for id, ok := range want.trees {
		if got.trees[id] != ok {
			t.Errorf("tree %s stored = %t, want %t", id, got.trees[id], ok)
		}
	}
	if !slices.Equal(got.records, want.records) {
		t.Errorf("records = %q, want %q", got.records, want.records)
	}
}

// seed stores one of everything and returns the trees to check.
func seed(t *testing.T, s catalog.Store) (catalog.TreeID, catalog.TreeID) {
	a := newCommit("a")
	ta, tb := sampleTree(10), sampleTree(11)
	update(t, s, func(tx catalog.Tx) error {
		for _, err := range []error{
			tx.PutCommit(a),
			tx.PutTree(ta.ComputeID(), ta),
			tx.PutRef(catalog.KindBranch, "main", a.ID),
			tx.PutRef(catalog.KindBranch, "alice.dev", a.ID),
			tx.PutRef(catalog.KindTag, "v1", a.ID),
			tx.PutRecord("run", "r0", []byte("zero")),
			tx.PutRecord("run", "r1", []byte("old")),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	return ta.ComputeID(), tb.ComputeID()
}

// writeEverything changes every kind of state, as a failing Update would
// before it fails.
func writeEverything(tx catalog.Tx) error {
	b := newCommit("b")
	tb := sampleTree(11)
	for _, err := range []error{
		tx.PutCommit(b),
		tx.PutTree(tb.ComputeID(), tb),
		tx.PutRef(catalog.KindBranch, "main", b.ID),
		tx.PutRef(catalog.KindBranch, "bob.new", b.ID),
		tx.DeleteRef(catalog.KindBranch, "alice.dev"),
		tx.DeleteRef(catalog.KindTag, "v1"),
		tx.PutRef(catalog.KindTag, "v2", b.ID),
		tx.PutRecord("run", "r1", []byte("new")),
		tx.PutRecord("run", "r2", []byte("two")),
		tx.DeleteRecord("run", "r0"),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func testUpdateRollback(t *testing.T, s catalog.Store) {
	ta, tb := seed(t, s)
	before := readState(t, s, ta, tb)
	if !before.trees[ta] || before.trees[tb] {
		t.Fatalf("seed: trees %v", before.trees)
	}
	fail := errors.New("fn failed")
	err := s.Update(t.Context(), func(tx catalog.Tx) error {
		if err := writeEverything(tx); err != nil {
			t.Errorf("writeEverything: %v", err)
		}
		return fail
	})
	if err != fail {
		t.Errorf("Update returned %v, want the error of fn unchanged", err)
	}
	sameState(t, readState(t, s, ta, tb), before)

	// The store is still usable and the same writes can commit.
	update(t, s, writeEverything)
	after := readState(t, s, ta, tb)
	if !after.trees[tb] || len(after.commits) != 2 || len(after.tags) != 1 {
		t.Errorf("after a successful Update: %+v", after)
	}
}

func testUpdatePanic(t *testing.T, s catalog.Store) {
	ta, tb := seed(t, s)
	before := readState(t, s, ta, tb)
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the panic of fn", r)
			}
		}()
		_ = s.Update(t.Context(), func(tx catalog.Tx) error {
			if err := writeEverything(tx); err != nil {
				t.Errorf("writeEverything: %v", err)
			}
			panic("boom")
		})
	}()
	sameState(t, readState(t, s, ta, tb), before)
	update(t, s, writeEverything) // not deadlocked
}

func testWritesInView(t *testing.T, s catalog.Store) {
	ta, tb := seed(t, s)
	before := readState(t, s, ta, tb)
	b := newCommit("b")
	tree := sampleTree(11)
	tests := []struct {
		name string
		fn   func(tx catalog.Tx) error
	}{
		{"PutRef", func(tx catalog.Tx) error { return tx.PutRef(catalog.KindBranch, "main", b.ID) }},
		{"PutRef new", func(tx catalog.Tx) error { return tx.PutRef(catalog.KindTag, "v9", b.ID) }},
		{"DeleteRef", func(tx catalog.Tx) error { return tx.DeleteRef(catalog.KindBranch, "alice.dev") }},
		{"PutCommit", func(tx catalog.Tx) error { return tx.PutCommit(b) }},
		{"PutTree", func(tx catalog.Tx) error { return tx.PutTree(tree.ComputeID(), tree) }},
		{"PutRecord", func(tx catalog.Tx) error { return tx.PutRecord("run", "r1", []byte("new")) }},
		{"PutRecord new kind", func(tx catalog.Tx) error { return tx.PutRecord("newkind", "k", nil) }},
		{"DeleteRecord", func(tx catalog.Tx) error { return tx.DeleteRecord("run", "r0") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			view(t, s, func(tx catalog.Tx) error { err = tc.fn(tx); return nil })
			wantClass(t, tc.name+" in a View", err, errdefs.ErrFailedPrecondition)
		})
	}
	sameState(t, readState(t, s, ta, tb), before)
}

// testConcurrentUpdates increments one counter from many goroutines: with
// serialized Updates no increment is lost.
func testConcurrentUpdates(t *testing.T, s catalog.Store) {
	const workers, perWorker = 8, 25
	incr := func(tx catalog.Tx) error {
		n := 0
		v, err := tx.GetRecord("counter", "n")
		switch {
		case err == nil:
			if n, err = strconv.Atoi(string(v)); err != nil {
				return err
			}
		case !errdefs.Is(err, errdefs.ErrNotFound):
			return err
		}
		runtime.Gosched() // widen the window for a lost update
		return tx.PutRecord("counter", "n", []byte(strconv.Itoa(n+1)))
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				if err := s.Update(context.Background(), incr); err != nil {
					t.Errorf("Update: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	view(t, s, func(tx catalog.Tx) error {
		v, err := tx.GetRecord("counter", "n")
		if err != nil {
			return err
		}
		if want := strconv.Itoa(workers * perWorker); string(v) != want {
			t.Errorf("counter = %s, want %s", v, want)
		}
		return nil
	})
}

// testViewIsolation runs Views while Updates move two refs and a record
// together: every View must see all three at one version, never a mix, and
// versions never go backwards.
func testViewIsolation(t *testing.T, s catalog.Store) {
	const versions, readers = 150, 4
	write := func(i int) func(tx catalog.Tx) error {
		return func(tx catalog.Tx) error {
			id := fakeID(strconv.Itoa(i))
			if err := tx.PutRef(catalog.KindBranch, "a", id); err != nil {
				return err
			}
			runtime.Gosched()
			if err := tx.PutRecord("version", "v", []byte(strconv.Itoa(i))); err != nil {
				return err
			}
			runtime.Gosched()
			return tx.PutRef(catalog.KindBranch, "b", id)
		}
	}
	update(t, s, write(0))

	done := make(chan struct{})
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			last := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				err := s.View(context.Background(), func(tx catalog.Tx) error {
					a, err := tx.GetRef(catalog.KindBranch, "a")
					if err != nil {
						return err
					}
					runtime.Gosched()
					v, err := tx.GetRecord("version", "v")
					if err != nil {
						return err
					}
					runtime.Gosched()
					b, err := tx.GetRef(catalog.KindBranch, "b")
					if err != nil {
						return err
					}
					i, _ := strconv.Atoi(string(v))
					if a != b || a != fakeID(string(v)) {
						t.Errorf("View saw a mix: a=%s… version=%s b=%s…", a.Short(), v, b.Short())
					}
					if i < last {
						t.Errorf("View saw version %d after %d", i, last)
					}
					last = i
					return nil
				})
				if err != nil {
					t.Errorf("View: %v", err)
					return
				}
			}
		})
	}
	for i := 1; i <= versions; i++ {
		update(t, s, write(i))
	}
	close(done)
	wg.Wait()
}

func testCancelledContext(t *testing.T, s catalog.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	fn := func(tx catalog.Tx) error { called = true; return tx.PutRecord("run", "r", nil) }
	if err := s.View(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Errorf("View with a cancelled context: %v", err)
	}
	if err := s.Update(ctx, fn); !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a cancelled context: %v", err)
	}
	if called {
		t.Errorf("fn ran with a cancelled context")
	}
	view(t, s, func(tx catalog.Tx) error {
		_, err := tx.GetRecord("run", "r")
		wantClass(t, "record of a cancelled Update", err, errdefs.ErrNotFound)
		return nil
	})
}

func testClose(t *testing.T, s catalog.Store) {
	update(t, s, func(tx catalog.Tx) error { return tx.PutRecord("run", "r", nil) })
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = s.Close() // must not panic; nil or an error are both fine
	nop := func(catalog.Tx) error { return nil }
	wantClass(t, "View after Close", s.View(t.Context(), nop), errdefs.ErrFailedPrecondition)
	wantClass(t, "Update after Close", s.Update(t.Context(), nop), errdefs.ErrFailedPrecondition)
}
