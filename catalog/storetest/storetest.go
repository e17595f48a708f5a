// Package storetest is the conformance suite of catalog.Store. Every
// implementation runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) catalog.Store { … })
//	}
//
// The suite fixes the behaviour the catalog relies on and the interface docs
// only state in words: separate ref namespaces, sorted listings,
// content-addressed commits and trees, error classes, atomic and isolated
// transactions.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// Run runs the suite. open returns a new, empty store for one subtest; it
// should register its own cleanup (the suite may have closed the store
// already, so a second Close must be harmless). Subtests run in parallel,
// each on its own store.
func Run(t *testing.T, open func(t *testing.T) catalog.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s catalog.Store)
	}{
		{"Refs", testRefs},
		{"RefNamespaces", testRefNamespaces},
		{"CommitRoundtrip", testCommitRoundtrip},
		{"CommitCopies", testCommitCopies},
		{"PutCommitIdempotent", testPutCommitIdempotent},
		{"PutCommitIDMismatch", testPutCommitIDMismatch},
		{"FindCommits", testFindCommits},
		{"TreeRoundtrip", testTreeRoundtrip},
		{"PutTreeIDMismatch", testPutTreeIDMismatch},
		{"Records", testRecords},
		{"ListRecords", testListRecords},
		{"ListRecordsWhileWriting", testListRecordsWhileWriting},
		{"InvalidArguments", testInvalidArguments},
		{"ReadYourWrites", testReadYourWrites},
		{"UpdateRollback", testUpdateRollback},
		{"UpdatePanic", testUpdatePanic},
		{"WritesInView", testWritesInView},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ViewIsolation", testViewIsolation},
		{"CancelledContext", testCancelledContext},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// update runs fn in an Update and fails the test on error.
func update(t *testing.T, s catalog.Store, fn func(tx catalog.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// view runs fn in a View and fails the test on error.
func view(t *testing.T, s catalog.Store, fn func(tx catalog.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// wantClass fails the test unless err is of the errdefs class.
func wantClass(t *testing.T, what string, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Errorf("%s: got error %v, want one wrapping %q", what, err, class)
	}
}

// fakeID returns a well-formed id that names no stored content.
func fakeID(s string) catalog.CommitID {
	sum := sha256.Sum256([]byte(s))
	return catalog.CommitID(hex.EncodeToString(sum[:]))
}

// baseTime has nanoseconds, to catch encodings that drop them.
var baseTime = time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)

// newCommit returns a commit with its ID set.
func newCommit(msg string, parents ...catalog.CommitID) *catalog.Commit {
	c := &catalog.Commit{
		Parents: parents,
		Height:  uint64(len(parents)) + 1,
		Tree:    catalog.TreeID(fakeID("tree " + msg)),
		Author:  "alice",
		Message: msg,
		Time:    baseTime,
	}
	c.ID = c.ComputeID()
	return c
}

// sampleTree returns a small tree whose content depends on n.
func sampleTree(n int) *catalog.Tree {
	t := catalog.NewTree()
	t.Namespaces[catalog.DefaultNamespace] = catalog.NamespaceEntry{}
	t.Namespaces["sales"] = catalog.NamespaceEntry{Properties: map[string]string{"owner": "alice", "comment": fmt.Sprint("tree ", n)}}
	t.Tables[catalog.TableIdent{Namespace: "sales", Name: "orders"}] = catalog.TableEntry{
		MetadataLocation: fmt.Sprintf("warehouse/sales/orders/metadata/%05d-1b6e.metadata.json", n),
		TableUUID:        "5f3c1b0e-9d7a-4c61-8f0e-2b1d3c4e5f60",
		SnapshotID:       int64(n) + 7241,
		SchemaID:         2,
	}
	t.Tables[catalog.TableIdent{Namespace: catalog.DefaultNamespace, Name: "events"}] = catalog.TableEntry{
		MetadataLocation: "warehouse/default/events/metadata/00000-aa.metadata.json",
	}
	return t
}
