package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func testRecords(t *testing.T, s catalog.Store) {
	getErr := func(kind, key string) error {
		var err error
		view(t, s, func(tx catalog.Tx) error { _, err = tx.GetRecord(kind, key); return nil })
		return err
	}
	wantRecord := func(kind, key string, want []byte) {
		t.Helper()
		view(t, s, func(tx catalog.Tx) error {
			got, err := tx.GetRecord(kind, key)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("GetRecord(%s, %s) = %q, %v; want %q", kind, key, got, err, want)
			}
			return nil
		})
	}

	wantClass(t, "GetRecord of a missing kind", getErr("run", "r1"), errdefs.ErrNotFound)

	value := []byte("v1\x00\xff")
	update(t, s, func(tx catalog.Tx) error {
		if err := tx.PutRecord("run", "r1", value); err != nil {
			return err
		}
		if err := tx.PutRecord("profile", "r1", []byte("profile")); err != nil {
			return err
		}
		return tx.PutRecord("run", "empty", nil)
	})
	value[0] = 'X' // the store kept a copy
	wantRecord("run", "r1", []byte("v1\x00\xff"))
	wantRecord("profile", "r1", []byte("profile"))
	wantRecord("run", "empty", nil)
	wantClass(t, "GetRecord of a missing key", getErr("run", "r2"), errdefs.ErrNotFound)

	// A returned value is a copy.
	view(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetRecord("run", "r1")
		if err != nil {
			return err
		}
		got[0] = 'X'
		return nil
	})
	wantRecord("run", "r1", []byte("v1\x00\xff"))

	// Overwrite.
	update(t, s, func(tx catalog.Tx) error { return tx.PutRecord("run", "r1", []byte("v2")) })
	wantRecord("run", "r1", []byte("v2"))

	// Delete; kinds are separate.
	update(t, s, func(tx catalog.Tx) error { return tx.DeleteRecord("run", "r1") })
	wantClass(t, "GetRecord of a deleted key", getErr("run", "r1"), errdefs.ErrNotFound)
	wantRecord("profile", "r1", []byte("profile"))
	wantRecord("run", "empty", nil)
	for _, tc := range []struct{ kind, key string }{{"run", "r1"}, {"run", "never"}, {"nokind", "r1"}} {
		err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.DeleteRecord(tc.kind, tc.key) })
		wantClass(t, "DeleteRecord("+tc.kind+", "+tc.key+")", err, errdefs.ErrNotFound)
	}
}

type kv struct{ key, value string }

func listRecords(t *testing.T, tx catalog.Tx, kind, prefix string) []kv {
	t.Helper()
	var out []kv
	if err := tx.ListRecords(kind, prefix, func(k string, v []byte) error {
		out = append(out, kv{k, string(v)})
		return nil
	}); err != nil {
		t.Fatalf("ListRecords(%s, %q): %v", kind, prefix, err)
	}
	return out
}

func testListRecords(t *testing.T, s catalog.Store) {
	all := []kv{{"a", "1"}, {"a/1", "2"}, {"a/2", "3"}, {"ab", "4"}, {"b", "5"}, {"b/1", "6"}, {"\u00e9", "7"}}
	update(t, s, func(tx catalog.Tx) error {
		// Put in reverse order; the walk is in key order.
		for _, r := range slices.Backward(all) {
			if err := tx.PutRecord("run", r.key, []byte(r.value)); err != nil {
				return err
			}
		}
		return tx.PutRecord("other", "a/x", []byte("other"))
	})
	tests := []struct {
		name, kind, prefix string
		want               []kv
	}{
		{"all", "run", "", all},
		{"prefix a/", "run", "a/", all[1:3]},
		{"prefix a", "run", "a", all[0:4]},
		{"whole key", "run", "ab", all[3:4]},
		{"non-ASCII", "run", "\u00e9", all[6:7]},
		{"no match", "run", "c", nil},
		{"other kind", "other", "", []kv{{"a/x", "other"}}},
		{"missing kind", "nokind", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			view(t, s, func(tx catalog.Tx) error {
				if got := listRecords(t, tx, tc.kind, tc.prefix); !slices.Equal(got, tc.want) {
					t.Errorf("ListRecords(%s, %q) = %q, want %q", tc.kind, tc.prefix, got, tc.want)
				}
				return nil
			})
		})
	}

	t.Run("early stop", func(t *testing.T) {
		stop := errors.New("stop")
		var calls int
		view(t, s, func(tx catalog.Tx) error {
			err := tx.ListRecords("run", "", func(string, []byte) error {
				calls++
				if calls == 2 {
					return stop
				}
				return nil
			})
			if err != stop {
				t.Errorf("ListRecords returned %v, want the error of fn unchanged", err)
			}
			return nil
		})
		if calls != 2 {
			t.Errorf("fn called %d times after it returned an error at call 2", calls)
		}
	})
}

// testListRecordsWhileWriting moves every record of one kind to another
// from inside the walk.
func testListRecordsWhileWriting(t *testing.T, s catalog.Store) {
	keys := []string{"k1", "k2", "k3", "k4", "k5"}
	update(t, s, func(tx catalog.Tx) error {
		for _, k := range keys {
			if err := tx.PutRecord("queue", k, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	var seen []string
	update(t, s, func(tx catalog.Tx) error {
		return tx.ListRecords("queue", "", func(k string, v []byte) error {
			seen = append(seen, k)
			if err := tx.DeleteRecord("queue", k); err != nil {
				return err
			}
			return tx.PutRecord("done", k, v)
		})
	})
	if !slices.Equal(seen, keys) {
		t.Errorf("walk saw %q, want %q", seen, keys)
	}
	view(t, s, func(tx catalog.Tx) error {
		if got := listRecords(t, tx, "queue", ""); len(got) != 0 {
			t.Errorf("queue still holds %q", got)
		}
		if got := listRecords(t, tx, "done", ""); len(got) != len(keys) {
			t.Errorf("done holds %q, want %d records", got, len(keys))
		}
		return nil
	})
}
