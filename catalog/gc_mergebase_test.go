package catalog_test

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/warehousetest"
)

// TestGCKeepsMergeBases: branches a and b split at commit X, both append
// to table t long after, and gc expires the history before the split.
// Merging b into a afterwards combines the appends exactly as without gc:
// the merge base X is expired history, but its table states are kept.
func TestGCKeepsMergeBases(t *testing.T) {
	for _, tc := range []struct {
		name string
		// into and source name the merge; with a tag, source is tag v1
		// on b's head.
		into, source string
	}{
		{name: "branches", into: "a", source: "b"},
		{name: "branch into main", into: "main", source: "a"},
		{name: "tag", into: "a", source: "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newGCEnv(t)
			e.must(e.importRows("dev", "t", 0, 10, ""))
			e.must(e.svc.Merge(e.ctx, catalog.MergeRequest{Source: ref(t, "dev"), Into: "main"}))
			e.advance(time.Hour)
			e.must(e.importRows("dev", "t", 10, 5, "")) // X: the split
			e.must(e.svc.CreateBranch(e.ctx, "a", ref(t, "dev")))
			e.must(e.svc.CreateBranch(e.ctx, "b", ref(t, "dev")))
			if tc.into == "main" {
				e.must(e.svc.Merge(e.ctx, catalog.MergeRequest{Source: ref(t, "dev"), Into: "main"}))
			}
			// Each side moves on before the cutoff too, so that the split
			// is not the last commit before it on either path.
			e.advance(24 * time.Hour)
			e.must(e.importRows("a", "t", 50, 1, ""))
			e.must(e.importRows("b", "t", 60, 1, ""))
			if tc.into == "main" {
				e.appendRows("main", 70, 1)
			}
			e.advance(40 * 24 * time.Hour)
			for i := range 3 {
				e.must(e.importRows("a", "t", 100+i*10, 2, ""))
				e.must(e.importRows("b", "t", 200+i*10, 3, ""))
				if tc.into == "main" {
					e.appendRows("main", 300+i*10, 1)
				}
				e.advance(24 * time.Hour)
			}
			if tc.source == "v1" {
				e.must(e.svc.CreateTag(e.ctx, "v1", ref(t, "b")))
				e.must(nil, e.svc.DeleteBranch(e.ctx, "b"))
			}
			e.must(nil, e.svc.DeleteBranch(e.ctx, "dev"))
			e.advance(10 * 24 * time.Hour)

			want := e.mergedRows(tc.into, tc.source)
			res := e.gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 30 * 24 * time.Hour})
			if res.ExpiredCommits == 0 {
				t.Fatal("gc expired no history: the test does not test")
			}
			e.must(e.svc.Merge(e.ctx, catalog.MergeRequest{Source: ref(t, tc.source), Into: catalog.BranchName(tc.into)}))
			if got := e.mustRows(e.tablesAt(tc.into)["t"]); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after gc the merge reads %d rows, want %d", len(got), len(want))
			}
			// A second collection finds the same merge base through the
			// expired history and keeps it still.
			e.advance(24 * time.Hour)
			e.gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 30 * 24 * time.Hour})
			e.appendRows(tc.into, 900, 1)
			e.must(e.svc.Merge(e.ctx, catalog.MergeRequest{Source: ref(t, tc.source), Into: catalog.BranchName(tc.into)}))
		})
	}
}

// mergedRows returns the rows of table t after merging source into into,
// merged on a scratch branch so the catalog is left as it was.
func (e *gcEnv) mergedRows(into, source string) []string {
	e.t.Helper()
	e.must(e.svc.CreateBranch(e.ctx, "scratch", ref(e.t, into)))
	defer func() { e.must(nil, e.svc.DeleteBranch(e.ctx, "scratch")) }()
	res, err := e.svc.Merge(e.ctx, catalog.MergeRequest{Source: ref(e.t, source), Into: "scratch"})
	if err != nil {
		e.t.Fatal(err)
	}
	if res.Outcome != "merge" || len(res.Combined) != 1 {
		e.t.Fatalf("merge without gc: %s combining %v, want a merge combining t", res.Outcome, res.Combined)
	}
	e.touch()
	return e.mustRows(e.tablesAt("scratch")["t"])
}

// appendRows imports n rows into table t on branch, through a branch merged
// into it when it is main.
func (e *gcEnv) appendRows(branch string, from, n int) {
	e.t.Helper()
	if branch != "main" {
		e.must(e.importRows(branch, "t", from, n, ""))
		return
	}
	e.must(e.svc.CreateBranch(e.ctx, "m", ref(e.t, "main")))
	e.must(e.importRows("m", "t", from, n, ""))
	e.must(e.svc.Merge(e.ctx, catalog.MergeRequest{Source: ref(e.t, "m"), Into: "main"}))
	e.must(nil, e.svc.DeleteBranch(e.ctx, "m"))
}

// TestGCKeepsMergeBasesOfKeptCommits: the merge base of a commit kept
// within the retention (not a head) and a head can be older than the merge
// base of any two heads. Here a merged b after both split at X, so a and
// b now meet at b's old commit Q; but a branch c made after gc from a's
// commit K, from before that merge, meets b at X. Merging b into c
// combines the appends as without gc.
func TestGCKeepsMergeBasesOfKeptCommits(t *testing.T) {
	e := newGCEnv(t)
	e.must(e.importRows("dev", "t", 0, 10, "")) // X
	e.must(e.svc.CreateBranch(e.ctx, "a", ref(t, "dev")))
	e.must(e.svc.CreateBranch(e.ctx, "b", ref(t, "dev")))
	e.must(nil, e.svc.DeleteBranch(e.ctx, "dev"))
	e.advance(24 * time.Hour)
	e.must(e.importRows("a", "t", 100, 1, "")) // P
	e.must(e.importRows("b", "t", 200, 1, "")) // Q
	e.advance(40 * 24 * time.Hour)
	e.must(e.importRows("a", "t", 300, 2, "")) // K
	k := e.head("a")
	e.advance(time.Hour)
	e.must(e.svc.Merge(e.ctx, catalog.MergeRequest{Source: ref(t, "b"), Into: "a"}))
	e.must(e.importRows("b", "t", 400, 3, "")) // R
	e.advance(10 * 24 * time.Hour)

	e.must(e.svc.CreateBranch(e.ctx, "c", ref(t, "@"+string(k))))
	e.must(e.importRows("c", "t", 500, 4, ""))
	want := e.mergedRows("c", "b")
	e.must(nil, e.svc.DeleteBranch(e.ctx, "c"))

	res := e.gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 30 * 24 * time.Hour})
	if res.ExpiredCommits == 0 || res.MergeBases == 0 {
		t.Fatalf("gc expired %d commits and kept %d merge bases: the test does not test", res.ExpiredCommits, res.MergeBases)
	}
	e.must(e.svc.CreateBranch(e.ctx, "c", ref(t, "@"+string(k))))
	e.must(e.importRows("c", "t", 500, 4, ""))
	e.must(e.svc.Merge(e.ctx, catalog.MergeRequest{Source: ref(t, "b"), Into: "c"}))
	if got := e.mustRows(e.tablesAt("c")["t"]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after gc the merge reads %d rows, want %d", len(got), len(want))
	}
}

// TestDoctorChecksKeptMergeBases: doctor checks the table state gc keeps of
// a merge base in expired history (branches a and b split at X, whose
// history gc expired) like the states of kept commits, and names it when
// its metadata file or its manifest list is gone. It runs on the
// warehouse of the test mode (testWarehouse), S3 too.
func TestDoctorChecksKeptMergeBases(t *testing.T) {
	for _, tc := range []struct {
		name string
		// file returns the location of the file to delete, of the state
		// whose metadata file is at meta.
		file func(t *testing.T, meta string) string
	}{
		{name: "metadata file", file: func(_ *testing.T, meta string) string { return meta }},
		{name: "manifest list", file: func(t *testing.T, meta string) string {
			md, err := table.ParseMetadataBytes(warehousetest.Read(t, meta))
			if err != nil {
				t.Fatal(err)
			}
			return md.CurrentSnapshot().ManifestList
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newGCEnvOn(t, testWarehouse(t))
			e.must(e.importRows("dev", "t", 0, 10, ""))
			e.advance(time.Hour)
			e.must(e.importRows("dev", "t", 10, 5, "")) // X: the split
			x, base := e.head("dev"), e.tablesAt("dev")["t"]
			e.must(e.svc.CreateBranch(e.ctx, "a", ref(t, "dev")))
			e.must(e.svc.CreateBranch(e.ctx, "b", ref(t, "dev")))
			e.must(nil, e.svc.DeleteBranch(e.ctx, "dev"))
			e.advance(24 * time.Hour)
			e.must(e.importRows("a", "t", 50, 1, ""))
			e.must(e.importRows("b", "t", 60, 1, ""))
			e.advance(40 * 24 * time.Hour)
			e.must(e.importRows("a", "t", 100, 2, ""))
			e.must(e.importRows("b", "t", 200, 3, ""))
			e.advance(10 * 24 * time.Hour)

			res := e.gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 30 * 24 * time.Hour})
			if res.ExpiredCommits == 0 || res.MergeBases != 1 || len(res.Missing) != 0 {
				t.Fatalf("gc expired %d commits, kept %d merge bases, found %v missing; want some, 1, none",
					res.ExpiredCommits, res.MergeBases, res.Missing)
			}
			if r := e.doctor(); len(r.Problems) != 0 || r.MergeBases != 1 {
				t.Fatalf("doctor after gc: %d merge bases, problems %+v", r.MergeBases, r.Problems)
			}

			loc := tc.file(t, base)
			key, ok := e.format.Storage().Key(loc)
			if !ok {
				t.Fatalf("%s is not in the warehouse", loc)
			}
			e.must(nil, e.format.Storage().Delete(e.ctx, key))
			r := e.doctor()
			where := "table sales.t at " + x.Short()
			if len(r.Problems) != 1 || !strings.HasPrefix(r.Problems[0].Where, where) ||
				!strings.Contains(r.Problems[0].Where, "merge base") || !strings.Contains(r.Problems[0].What, path.Base(key)) {
				t.Fatalf("doctor after deleting %s: %+v; want one problem at %s naming it", key, r.Problems, where)
			}
			// gc names it too, and keeps the rest of the table.
			if res := e.gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 30 * 24 * time.Hour}); !slices.Equal(res.Missing, []string{key}) || len(res.Deleted) != 0 {
				t.Fatalf("gc after deleting %s: missing %v, deleted %v", key, res.Missing, res.Deleted)
			}
		})
	}
}
