package catalog_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// newFakeService returns a Local service over backend with fake table
// states and a branch dev.a forked from main with namespace default.
func newFakeService(t testing.TB, store catalog.Store) *catalog.Local {
	t.Helper()
	ctx := context.Background()
	svc, err := catalog.NewLocal(ctx, store, fakeFormat{}, catalog.LocalOptions{Author: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if _, err := svc.CreateBranch(ctx, "dev.a", catalog.Ref{Name: "main"}); err != nil {
		t.Fatal(err)
	}
	return svc
}

func ident(s string) catalog.TableIdent {
	id, err := catalog.ParseTableIdent(s, catalog.DefaultNamespace)
	if err != nil {
		panic(err)
	}
	return id
}

func set(entries map[string]string) catalog.Changes {
	ch := catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{}}
	for k, v := range entries {
		ch.Tables[ident(k)] = &catalog.TableEntry{MetadataLocation: v}
	}
	return ch
}

func head(t testing.TB, svc catalog.Service, b string) catalog.CommitID {
	t.Helper()
	bi, err := svc.GetBranch(context.Background(), catalog.BranchName(b))
	if err != nil {
		t.Fatal(err)
	}
	return bi.Head
}

func tables(t testing.TB, svc catalog.Service, ref string) map[string]string {
	t.Helper()
	r, err := catalog.ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := svc.ListTables(context.Background(), r, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tb := range ts {
		out[tb.Ident.String()] = tb.Metadata
	}
	return out
}

func TestConcurrentCommits(t *testing.T) {
	for _, b := range storeBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			svc := newFakeService(t, b.open(t))
			base := head(t, svc, "dev.a")
			if _, err := svc.CommitTables(ctx, "dev.a", base, set(map[string]string{"t1": "r1"}), catalog.CommitOptions{}); err != nil {
				t.Fatal(err)
			}
			// A second writer that read the same base changes another table: it rebases.
			c2, err := svc.CommitTables(ctx, "dev.a", base, set(map[string]string{"t2": "r2"}), catalog.CommitOptions{})
			if err != nil {
				t.Fatalf("commit to a different table from a stale base: %v", err)
			}
			if got := tables(t, svc, "dev.a"); got["default.t1"] != "r1" || got["default.t2"] != "r2" {
				t.Fatalf("after rebase tables = %v", got)
			}
			if len(c2.Parents) != 1 || c2.Parents[0] == base {
				t.Fatalf("rebased commit parents = %v, want the new head", c2.Parents)
			}
			// A third writer from the same stale base touching t1 conflicts, naming it.
			_, err = svc.CommitTables(ctx, "dev.a", base, set(map[string]string{"t1": "r3", "t9": "r9"}), catalog.CommitOptions{})
			if !errdefs.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "default.t1") {
				t.Fatalf("same-table commit from stale base: err = %v, want a conflict naming default.t1", err)
			}
			if got := tables(t, svc, "dev.a"); len(got) != 2 {
				t.Fatalf("a failed commit changed the branch: %v", got)
			}
		})
	}
}

// TestAtomicMultiTableCommit has writers set ten tables to one version per
// commit while readers check they never see two versions at once.
func TestAtomicMultiTableCommit(t *testing.T) {
	for _, b := range storeBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			svc := newFakeService(t, b.open(t))
			const n, commits = 10, 200
			done := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-done:
							return
						default:
						}
						got := tables(t, svc, "dev.a")
						seen := map[string]bool{}
						for _, v := range got {
							seen[v] = true
						}
						if len(seen) > 1 || len(got) != 0 && len(got) != n {
							errs <- fmt.Errorf("reader saw a partial commit: %v", got)
							return
						}
					}
				}()
			}
			for k := range commits {
				m := map[string]string{}
				for i := range n {
					m[fmt.Sprintf("t%d", i)] = fmt.Sprintf("r%d", k)
				}
				if _, err := svc.CommitTables(ctx, "dev.a", "", set(m), catalog.CommitOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			close(done)
			wg.Wait()
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
		})
	}
}

// TestParallelWriters: 8 writers on different tables of one branch, each
// reading the head and committing, all succeed.
func TestParallelWriters(t *testing.T) {
	for _, b := range storeBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			svc := newFakeService(t, b.open(t))
			const writers, each = 8, 25
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range each {
						base := head(t, svc, "dev.a")
						_, err := svc.CommitTables(ctx, "dev.a", base,
							set(map[string]string{fmt.Sprintf("w%d", w): fmt.Sprintf("r%d", k)}), catalog.CommitOptions{})
						if err != nil {
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
			got := tables(t, svc, "dev.a")
			for w := range writers {
				if v := got[fmt.Sprintf("default.w%d", w)]; v != fmt.Sprintf("r%d", each-1) {
					t.Fatalf("writer %d's table = %q", w, v)
				}
			}
			log, err := svc.Log(ctx, catalog.Ref{Name: "dev.a"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(log) != writers*each+1 {
				t.Fatalf("log has %d commits, want %d", len(log), writers*each+1)
			}
		})
	}
}

func TestRefForms(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	svc, err := catalog.NewLocal(ctx, storeBackends()[0].open(t), fakeFormat{},
		catalog.LocalOptions{Now: func() time.Time { clock = clock.Add(time.Minute); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateBranch(ctx, "dev.a", catalog.Ref{Name: "main"}); err != nil {
		t.Fatal(err)
	}
	c1, _ := svc.CommitTables(ctx, "dev.a", "", set(map[string]string{"t": "r1"}), catalog.CommitOptions{})
	c2, _ := svc.CommitTables(ctx, "dev.a", "", set(map[string]string{"t": "r2"}), catalog.CommitOptions{})
	if _, err := svc.CreateTag(ctx, "v1", catalog.Ref{Name: "dev.a", Commit: string(c1.ID[:8])}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ref  string
		want string // table state, or an error class name
	}{
		{"dev.a", "r2"},
		{"dev.a@" + string(c1.ID[:8]), "r1"},
		{"dev.a@" + string(c2.ID), "r2"},
		{"@" + string(c1.ID[:12]), "r1"},
		{"v1", "r1"},
		{"dev.a@" + c1.Time.Format(time.RFC3339), "r1"},
		{"dev.a@" + c1.Time.Add(30*time.Second).Format(time.RFC3339), "r1"},
		{"dev.a@" + c2.Time.Add(time.Hour).Format(time.RFC3339), "r2"},
		{"dev.a@2020-01-01T00:00:00Z", "not found"},
		{"main@" + string(c1.ID[:8]), "not found"},
		{"nope.x", "not found"},
		{"@00000000", "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.ref, func(t *testing.T) {
			ref, err := catalog.ParseRef(tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := svc.ListTables(ctx, ref, "")
			if err != nil {
				if errdefs.Class(err).Error() != tc.want {
					t.Fatalf("err = %v, want %s", err, tc.want)
				}
				return
			}
			if len(ts) != 1 || ts[0].Metadata != tc.want {
				t.Fatalf("tables = %+v, want state %s", ts, tc.want)
			}
		})
	}
}

func TestWriteGuards(t *testing.T) {
	ctx := context.Background()
	svc := newFakeService(t, storeBackends()[0].open(t))
	if _, err := svc.CreateTag(ctx, "v1", catalog.Ref{Name: "main"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		branch string
		class  error
		text   string
	}{
		{"main", errdefs.ErrFailedPrecondition, "main takes writes only by merge"},
		{"v1", errdefs.ErrFailedPrecondition, "v1 is a tag, and tags are read-only"},
		{"dev.nope", errdefs.ErrNotFound, "branch dev.nope does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.branch, func(t *testing.T) {
			before := head(t, svc, "main")
			_, err := svc.CommitTables(ctx, catalog.BranchName(tc.branch), "", set(map[string]string{"t": "x"}), catalog.CommitOptions{})
			if !errdefs.Is(err, tc.class) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.class, tc.text)
			}
			if head(t, svc, "main") != before {
				t.Fatal("main moved")
			}
		})
	}
	// Merging into main is the way in.
	if _, err := svc.CommitTables(ctx, "dev.a", "", set(map[string]string{"t": "x"}), catalog.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: "dev.a"}, Into: "main"})
	if err != nil || res.Outcome != "fast-forward" {
		t.Fatalf("merge into main: %+v, %v", res, err)
	}
}
