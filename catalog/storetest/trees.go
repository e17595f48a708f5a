package storetest

import (
	"reflect"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func testTreeRoundtrip(t *testing.T, s catalog.Store) {
	many := catalog.NewTree()
	for _, ns := range []catalog.Namespace{"a", "b_2", "Z"} {
		many.Namespaces[ns] = catalog.NamespaceEntry{Properties: map[string]string{"location": "s3://bucket/" + string(ns)}}
		for _, name := range []string{"t", "_u", "v9"} {
			many.Tables[catalog.TableIdent{Namespace: ns, Name: name}] = catalog.TableEntry{
				MetadataLocation: "s3://bucket/" + string(ns) + "/" + name + "/metadata/00001.metadata.json",
				SnapshotID:       -1, // any int64
			}
		}
	}
	tests := []struct {
		name string
		tree *catalog.Tree
	}{
		{"empty", catalog.NewTree()},
		{"sample", sampleTree(1)},
		{"many", many},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.tree.ComputeID()
			for range 2 { // the second PutTree is a no-op
				update(t, s, func(tx catalog.Tx) error { return tx.PutTree(id, tc.tree) })
			}
			view(t, s, func(tx catalog.Tx) error {
				got, err := tx.GetTree(id)
				if err != nil {
					return err
				}
				if !reflect.DeepEqual(got, tc.tree) {
					t.Errorf("GetTree(%s) = %+v, want %+v", id, got, tc.tree)
				}
				if gid := got.ComputeID(); gid != id {
					t.Errorf("ComputeID of the stored tree = %s, want %s", gid, id)
				}
				return nil
			})
		})
	}
	view(t, s, func(tx catalog.Tx) error {
		_, err := tx.GetTree(catalog.TreeID(fakeID("missing")))
		wantClass(t, "GetTree of a missing tree", err, errdefs.ErrNotFound)
		return nil
	})
}

func testPutTreeIDMismatch(t *testing.T, s catalog.Store) {
	tree := sampleTree(2)
	wrong := catalog.TreeID(fakeID("wrong"))
	tests := []struct {
		name string
		id   catalog.TreeID
		tree *catalog.Tree
	}{
		{"wrong id", wrong, tree},
		{"empty id", "", tree},
		{"id of another tree", sampleTree(3).ComputeID(), tree},
		{"nil tree", tree.ComputeID(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.PutTree(tc.id, tc.tree) })
			wantClass(t, "PutTree", err, errdefs.ErrInvalidArgument)
		})
	}
	view(t, s, func(tx catalog.Tx) error {
		for _, id := range []catalog.TreeID{wrong, sampleTree(3).ComputeID(), tree.ComputeID()} {
			if _, err := tx.GetTree(id); !errdefs.Is(err, errdefs.ErrNotFound) {
				t.Errorf("GetTree(%s) after a rejected PutTree: %v, want not found", id, err)
			}
		}
		return nil
	})
}
