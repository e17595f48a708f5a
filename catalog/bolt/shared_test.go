package bolt

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/storetest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func openSharedT(t testing.TB, path string, opts Options) *Shared {
	t.Helper()
	s, err := OpenShared(path, opts)
	if err != nil {
		t.Fatalf("OpenShared: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSharedStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) catalog.Store {
		return openSharedT(t, tempPath(t), Options{NoSync: true})
	})
}

// TestSharedTwoHolders: two Shared stores on one file (two open file
// descriptions, so their locks exclude each other as two processes' do)
// take turns: every transaction of both goes through.
func TestSharedTwoHolders(t *testing.T) {
	path := tempPath(t)
	a, b := openSharedT(t, path, Options{NoSync: true}), openSharedT(t, path, Options{NoSync: true})
	id := catalog.CommitID("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w, s := range []*Shared{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				errs <- s.Update(t.Context(), func(tx catalog.Tx) error {
					return tx.PutRef(catalog.KindBranch, fmt.Sprintf("w%d.b%02d", w, i), id)
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := b.View(t.Context(), func(tx catalog.Tx) error {
		refs, err := tx.ListRefs(catalog.KindBranch)
		if err == nil && len(refs) != 100 {
			err = fmt.Errorf("%d branches, want 100", len(refs))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if a.s != nil || b.s != nil {
		t.Error("the file stayed open after the last transaction")
	}
}

// TestSharedWaitsForHolder: while another holder keeps the file, a
// transaction waits up to the timeout and then fails as unavailable.
func TestSharedWaitsForHolder(t *testing.T) {
	path := tempPath(t)
	sh := openSharedT(t, path, Options{NoSync: true, Timeout: 200 * time.Millisecond})
	held := openT(t, path, Options{NoSync: true})
	start := time.Now()
	err := sh.View(t.Context(), func(catalog.Tx) error { return nil })
	if !errdefs.Is(err, errdefs.ErrUnavailable) || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("View while the file is held: %v after %s, want unavailable after the timeout", err, time.Since(start))
	}
	held.Close()
	if err := sh.View(t.Context(), func(catalog.Tx) error { return nil }); err != nil {
		t.Fatalf("View once the file is free: %v", err)
	}
	sh.Close()
	if err := sh.View(t.Context(), func(catalog.Tx) error { return nil }); !errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("View after Close: %v", err)
	}
}

// TestSharedUpdateWaits: an Update keeps trying past one lock timeout
// while ctx lasts (a run's merge must not fail because another process
// held the file for a moment); a View gives up after one.
func TestSharedUpdateWaits(t *testing.T) {
	path := tempPath(t)
	sh := openSharedT(t, path, Options{NoSync: true, Timeout: 100 * time.Millisecond})
	held := openT(t, path, Options{NoSync: true})
	time.AfterFunc(400*time.Millisecond, func() { held.Close() })
	id := catalog.CommitID("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	start := time.Now()
	if err := sh.Update(t.Context(), func(tx catalog.Tx) error { return tx.PutRef(catalog.KindBranch, "b", id) }); err != nil {
		t.Fatalf("Update while the file was held for 0.4 s: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("Update returned after %s, before the holder let go", d)
	}
}

// TestSharedReleasesOnPanic: a transaction that panics does not keep the
// file open.
func TestSharedReleasesOnPanic(t *testing.T) {
	path := tempPath(t)
	sh := openSharedT(t, path, Options{NoSync: true})
	func() {
		defer func() { recover() }()
		sh.View(t.Context(), func(catalog.Tx) error { panic("boom") })
	}()
	if sh.s != nil || sh.refs != 0 {
		t.Fatalf("after a panic the file is open (refs %d)", sh.refs)
	}
	openT(t, path, Options{NoSync: true, Timeout: 100 * time.Millisecond}).Close()
}
