package storetest

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// checkCommit compares every field, so that a failure names the field.
func checkCommit(t *testing.T, got, want *catalog.Commit) {
	t.Helper()
	if got.ID != want.ID {
		t.Errorf("ID = %s, want %s", got.ID, want.ID)
	}
	if !reflect.DeepEqual(got.Parents, want.Parents) {
		t.Errorf("Parents = %#v, want %#v", got.Parents, want.Parents)
	}
	if got.Height != want.Height || got.Tree != want.Tree || got.Author != want.Author || got.Message != want.Message {
		t.Errorf("Height, Tree, Author, Message = %d, %s, %q, %q; want %d, %s, %q, %q",
			got.Height, got.Tree, got.Author, got.Message, want.Height, want.Tree, want.Author, want.Message)
	}
	if !got.Time.Equal(want.Time) || got.Time.Location().String() != want.Time.Location().String() {
		t.Errorf("Time = %s, want %s", got.Time.Format(time.RFC3339Nano), want.Time.Format(time.RFC3339Nano))
	}
	if !reflect.DeepEqual(got.Properties, want.Properties) {
		t.Errorf("Properties = %#v, want %#v", got.Properties, want.Properties)
	}
	if id := got.ComputeID(); id != want.ID {
		t.Errorf("ComputeID of the stored commit = %s, want %s", id, want.ID)
	}
}

func testCommitRoundtrip(t *testing.T, s catalog.Store) {
	root := newCommit("root")
	tests := []struct {
		name string
		c    catalog.Commit
	}{
		{"root", *root},
		{"child", catalog.Commit{
			Parents: []catalog.CommitID{root.ID}, Height: 2, Tree: catalog.TreeID(fakeID("t2")),
			Author: "bob", Message: "load orders", Time: baseTime.Add(time.Nanosecond),
		}},
		{"merge with properties", catalog.Commit{
			Parents: []catalog.CommitID{fakeID("p1"), fakeID("p2")}, Height: 7, Tree: catalog.TreeID(fakeID("t3")),
			Author: "ci", Message: "merge \"alice.dev\" into main\n\nline two ✓", Time: baseTime.Add(999 * time.Hour),
			Properties: map[string]string{
				catalog.PropRunID:     "run-0001",
				catalog.PropOperation: "merge",
				"note":                "é ✓ \x00",
			},
		}},
		{"empty parents", catalog.Commit{
			Parents: []catalog.CommitID{}, Height: 1, Tree: catalog.TreeID(fakeID("t4")), Time: time.Unix(0, 1).UTC(),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.ID = c.ComputeID()
			update(t, s, func(tx catalog.Tx) error { return tx.PutCommit(&c) })
			view(t, s, func(tx catalog.Tx) error {
				got, err := tx.GetCommit(c.ID)
				if err != nil {
					return err
				}
				checkCommit(t, got, &c)
				return nil
			})
		})
	}
	view(t, s, func(tx catalog.Tx) error {
		_, err := tx.GetCommit(fakeID("missing"))
		wantClass(t, "GetCommit of a missing commit", err, errdefs.ErrNotFound)
		return nil
	})
}

// testCommitCopies checks that callers cannot change stored commits through
// the values they passed in or got back.
func testCommitCopies(t *testing.T, s catalog.Store) {
	c := newCommit("copies", fakeID("p"))
	c.Properties = map[string]string{"k": "v"}
	c.ID = c.ComputeID()
	want := *c
	want.Parents = slices.Clone(c.Parents)
	want.Properties = maps.Clone(c.Properties)

	update(t, s, func(tx catalog.Tx) error { return tx.PutCommit(c) })
	c.Parents[0] = fakeID("changed")
	c.Properties["k"] = "changed"
	view(t, s, func(tx catalog.Tx) error {
		got, err := tx.GetCommit(want.ID)
		if err != nil {
			return err
		}
		checkCommit(t, got, &want)
		got.Parents[0] = fakeID("changed")
		got.Properties["k"] = "changed"
		got.Message = "changed"
		again, err := tx.GetCommit(want.ID)
		if err != nil {
			return err
		}
		checkCommit(t, again, &want)
		return nil
	})
}

func testPutCommitIdempotent(t *testing.T, s catalog.Store) {
	c := newCommit("twice")
	for range 2 {
		update(t, s, func(tx catalog.Tx) error {
			if err := tx.PutCommit(c); err != nil {
				return err
			}
			return tx.PutCommit(c)
		})
	}
	view(t, s, func(tx catalog.Tx) error {
		ids, err := tx.FindCommits("", 0)
		if err != nil {
			return err
		}
		if !slices.Equal(ids, []catalog.CommitID{c.ID}) {
			t.Errorf("FindCommits = %v, want [%s]", ids, c.ID)
		}
		got, err := tx.GetCommit(c.ID)
		if err != nil {
			return err
		}
		checkCommit(t, got, c)
		return nil
	})
}

func testPutCommitIDMismatch(t *testing.T, s catalog.Store) {
	good := newCommit("good")
	edit := func(f func(c *catalog.Commit)) *catalog.Commit {
		c := *good
		f(&c)
		return &c
	}
	tests := []struct {
		name string
		c    *catalog.Commit
	}{
		{"wrong id", edit(func(c *catalog.Commit) { c.ID = fakeID("wrong") })},
		{"empty id", edit(func(c *catalog.Commit) { c.ID = "" })},
		{"changed after hashing", edit(func(c *catalog.Commit) { c.Message = "edited" })},
		{"upper-case id", edit(func(c *catalog.Commit) { c.ID = catalog.CommitID(strings.ToUpper(string(c.ID))) })},
		{"nil", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.PutCommit(tc.c) })
			wantClass(t, "PutCommit", err, errdefs.ErrInvalidArgument)
		})
	}
	view(t, s, func(tx catalog.Tx) error {
		ids, err := tx.FindCommits("", 0)
		if err != nil {
			return err
		}
		if len(ids) != 0 {
			t.Errorf("rejected commits were stored: %v", ids)
		}
		return nil
	})
}

func testFindCommits(t *testing.T, s catalog.Store) {
	var all []catalog.CommitID
	update(t, s, func(tx catalog.Tx) error {
		for i := range 60 {
			c := newCommit(fmt.Sprint("commit ", i))
			all = append(all, c.ID)
			if err := tx.PutCommit(c); err != nil {
				return err
			}
		}
		return nil
	})
	slices.Sort(all)
	withPrefix := func(p string) []catalog.CommitID {
		var out []catalog.CommitID
		for _, id := range all {
			if strings.HasPrefix(string(id), p) {
				out = append(out, id)
			}
		}
		return out
	}
	first := string(all[0][:1])
	tests := []struct {
		name   string
		prefix string
		limit  int
		want   []catalog.CommitID
	}{
		{"all", "", 0, all},
		{"all, negative limit", "", -1, all},
		{"limit", "", 5, all[:5]},
		{"limit above count", "", 1000, all},
		{"one character", first, 0, withPrefix(first)},
		{"one character, limit 1", first, 1, withPrefix(first)[:1]},
		{"full id", string(all[17]), 0, all[17:18]},
		{"eight characters", string(all[30][:8]), 0, all[30:31]},
		{"longer than an id", string(all[17]) + "0", 0, nil},
		{"no match", "zz", 0, nil},
		{"between ids", string(all[0][:2]) + "~", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			view(t, s, func(tx catalog.Tx) error {
				got, err := tx.FindCommits(tc.prefix, tc.limit)
				if err != nil {
					return err
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("FindCommits(%q, %d) = %v, want %v", tc.prefix, tc.limit, got, tc.want)
				}
				return nil
			})
		})
	}
}
