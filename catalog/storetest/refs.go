package storetest

import (
	"slices"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func testRefs(t *testing.T, s catalog.Store) {
	for _, kind := range []catalog.RefKind{catalog.KindBranch, catalog.KindTag} {
		// Sequential: both kinds share the store, which is part of the test.
		t.Run(string(kind), func(t *testing.T) {
			testRefsOfKind(t, s, kind)
		})
	}
}

func testRefsOfKind(t *testing.T, s catalog.Store, kind catalog.RefKind) {
	prefix := string(kind) + "."
	a, b := fakeID(prefix+"a"), fakeID(prefix+"b")

	view(t, s, func(tx catalog.Tx) error {
		_, err := tx.GetRef(kind, prefix+"missing")
		wantClass(t, "GetRef of a missing ref", err, errdefs.ErrNotFound)
		return nil
	})
	err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DeleteRef(kind, prefix+"missing") })
	wantClass(t, "DeleteRef of a missing ref", err, errdefs.ErrNotFound)

	// Put in unsorted order; ListRefs sorts.
	names := []string{prefix + "zed.x", prefix + "alice.dev", "main", prefix + "bob.b-1", prefix + "bob.b"}
	update(t, s, func(tx catalog.Tx) error {
		for _, n := range names {
			if err := tx.PutRef(kind, n, a); err != nil {
				return err
			}
		}
		return nil
	})
	wantNames := slices.Sorted(slices.Values(names))
	checkRefs := func(want map[string]catalog.CommitID, order []string) {
		t.Helper()
		view(t, s, func(tx catalog.Tx) error {
			refs, err := tx.ListRefs(kind)
			if err != nil {
				return err
			}
			var got []string
			for _, r := range refs {
				got = append(got, r.Name)
				if r.Commit != want[r.Name] {
					t.Errorf("ListRefs: %s → %s, want %s", r.Name, r.Commit, want[r.Name])
				}
			}
			if !slices.Equal(got, order) {
				t.Errorf("ListRefs(%s) = %q, want %q", kind, got, order)
			}
			for n, id := range want {
				got, err := tx.GetRef(kind, n)
				if err != nil || got != id {
					t.Errorf("GetRef(%s, %s) = %s, %v; want %s", kind, n, got, err, id)
				}
			}
			return nil
		})
	}
	want := map[string]catalog.CommitID{}
	for _, n := range names {
		want[n] = a
	}
	checkRefs(want, wantNames)

	// Move one ref.
	update(t, s, func(tx catalog.Tx) error { return tx.PutRef(kind, "main", b) })
	want["main"] = b
	checkRefs(want, wantNames)

	// Delete one ref.
	update(t, s, func(tx catalog.Tx) error { return tx.DeleteRef(kind, prefix+"bob.b") })
	delete(want, prefix+"bob.b")
	wantNames = slices.DeleteFunc(wantNames, func(n string) bool { return n == prefix+"bob.b" })
	checkRefs(want, wantNames)
	view(t, s, func(tx catalog.Tx) error {
		_, err := tx.GetRef(kind, prefix+"bob.b")
		wantClass(t, "GetRef of a deleted ref", err, errdefs.ErrNotFound)
		return nil
	})
	err = s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DeleteRef(kind, prefix+"bob.b") })
	wantClass(t, "DeleteRef of a deleted ref", err, errdefs.ErrNotFound)
}

// testRefNamespaces checks that a branch and a tag may share a name.
func testRefNamespaces(t *testing.T, s catalog.Store) {
	br, tag := fakeID("branch"), fakeID("tag")
	update(t, s, func(tx catalog.Tx) error {
		if err := tx.PutRef(catalog.KindBranch, "v1", br); err != nil {
			return err
		}
		return tx.PutRef(catalog.KindTag, "v1", tag)
	})
	check := func(kind catalog.RefKind, want catalog.CommitID) {
		t.Helper()
		view(t, s, func(tx catalog.Tx) error {
			got, err := tx.GetRef(kind, "v1")
			if err != nil || got != want {
				t.Errorf("GetRef(%s, v1) = %s, %v; want %s", kind, got, err, want)
			}
			refs, err := tx.ListRefs(kind)
			if err != nil || len(refs) != 1 {
				t.Errorf("ListRefs(%s) = %v, %v; want one ref", kind, refs, err)
			}
			return nil
		})
	}
	check(catalog.KindBranch, br)
	check(catalog.KindTag, tag)

	update(t, s, func(tx catalog.Tx) error { return tx.DeleteRef(catalog.KindBranch, "v1") })
	check(catalog.KindTag, tag)
	view(t, s, func(tx catalog.Tx) error {
		_, err := tx.GetRef(catalog.KindBranch, "v1")
		wantClass(t, "GetRef of the deleted branch", err, errdefs.ErrNotFound)
		return nil
	})
}
