package catalog_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// mergeAll starts one goroutine per branch, each committing changes(i) to
// its branch and merging it into main rounds times, all released at once,
// and returns each merge's error by branch and round.
func mergeAll(t *testing.T, svc *catalog.Local, branches, rounds int, changes func(i, round int) catalog.Changes) [][]error {
	t.Helper()
	ctx := context.Background()
	for i := range branches {
		if _, err := svc.CreateBranch(ctx, catalog.BranchName(fmt.Sprintf("dev.m%d", i)), catalog.Ref{Name: "main"}); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([][]error, branches)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range branches {
		errs[i] = make([]error, rounds)
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := catalog.BranchName(fmt.Sprintf("dev.m%d", i))
			<-start
			for r := range rounds {
				if _, err := svc.CommitTables(ctx, b, "", changes(i, r), catalog.CommitOptions{}); err != nil {
					errs[i][r] = fmt.Errorf("commit to %s: %w", b, err)
					return
				}
				_, errs[i][r] = svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: string(b)}, Into: catalog.MainBranch})
			}
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// seedMain commits ch to dev.a and merges it into main.
func seedMain(t *testing.T, svc *catalog.Local, ch catalog.Changes) {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.CommitTables(ctx, "dev.a", "", ch, catalog.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: "dev.a"}, Into: catalog.MainBranch}); err != nil {
		t.Fatal(err)
	}
}

// mergeShared seeds table shared on main, then merges sharedBranches
// branches into main at once, branch i having made operation op<i+1> on
// shared ("r": replace, "a": append) and set its own table own<i>. A merge
// starts over only when another one committed, so with one merge each six
// branches stay within the five retries.
func mergeShared(t *testing.T, store catalog.Store, op string) (*catalog.Local, []error) {
	t.Helper()
	svc := newFakeService(t, store)
	seedMain(t, svc, set(map[string]string{"shared": "r0"}))
	errs := mergeAll(t, svc, sharedBranches, 1, func(i, _ int) catalog.Changes {
		return set(map[string]string{"shared": fmt.Sprintf("r0,%s%d", op, i+1), fmt.Sprintf("own%d", i): "r1"})
	})
	out := make([]error, sharedBranches)
	for i := range errs {
		out[i] = errs[i][0]
	}
	return svc, out
}

const sharedBranches = 6

// TestConcurrentMerges merges many branches into main at once. Branches
// that changed disjoint tables all merge, however often main moves under
// them (the merge rebases onto the new head, as CommitTables does); a
// table changed on several branches conflicts for all but the first
// merge, or combines when every branch only appended.
func TestConcurrentMerges(t *testing.T) {
	for _, b := range storeBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			t.Run("disjoint tables", func(t *testing.T) {
				t.Parallel()
				svc := newFakeService(t, b.open(t))
				const branches, rounds = 16, 8
				errs := mergeAll(t, svc, branches, rounds, func(i, r int) catalog.Changes {
					return set(map[string]string{fmt.Sprintf("m%d", i): fmt.Sprintf("r%d", r)})
				})
				for i := range branches {
					for r, err := range errs[i] {
						if err != nil {
							t.Errorf("branch %d, round %d: %v", i, r, err)
						}
					}
				}
				got := tables(t, svc, "main")
				for i := range branches {
					if v := got[fmt.Sprintf("default.m%d", i)]; v != fmt.Sprintf("r%d", rounds-1) {
						t.Errorf("table m%d on main is %q, want r%d", i, v, rounds-1)
					}
				}
				log, err := svc.Log(context.Background(), catalog.Ref{Name: "main"}, 0)
				if err != nil {
					t.Fatal(err)
				}
				merges := 0
				for _, c := range log {
					if len(c.Parents) == 2 {
						merges++
					}
				}
				// The first merge of each branch may fast-forward; every other one is a merge commit.
				if merges < branches*rounds-branches {
					t.Errorf("main has %d merge commits, want at least %d", merges, branches*rounds-branches)
				}
			})
			t.Run("same table replaced", func(t *testing.T) {
				t.Parallel()
				svc, errs := mergeShared(t, b.open(t), "r")
				winner := -1
				for i := range sharedBranches {
					err := errs[i]
					var mc *catalog.MergeConflictError
					switch {
					case err == nil && winner >= 0:
						t.Errorf("branches %d and %d both merged a replace of the shared table", winner, i)
					case err == nil:
						winner = i
					case !errorsAs(err, &mc) || len(mc.Conflicts) != 1 || mc.Conflicts[0].Name != "default.shared":
						t.Errorf("branch %d: %v, want a merge conflict on default.shared alone", i, err)
					}
				}
				if winner < 0 {
					t.Fatal("no branch merged")
				}
				got := tables(t, svc, "main")
				want := map[string]string{"default.shared": fmt.Sprintf("r0,r%d", winner+1), fmt.Sprintf("default.own%d", winner): "r1"}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("main holds %v, want the winner's tables alone: %v", got, want)
				}
			})
			t.Run("same table appended", func(t *testing.T) {
				t.Parallel()
				svc, errs := mergeShared(t, b.open(t), "a")
				for i := range sharedBranches {
					if err := errs[i]; err != nil {
						t.Errorf("branch %d: %v", i, err)
					}
				}
				got := tables(t, svc, "main")["default.shared"]
				ops := strings.Split(got, ",")
				if len(ops) != sharedBranches+1 || ops[0] != "r0" {
					t.Fatalf("shared table on main is %q, want r0 and the %d appends", got, sharedBranches)
				}
				for i := range sharedBranches {
					if !strings.Contains(got+",", fmt.Sprintf(",a%d,", i+1)) {
						t.Errorf("shared table on main is %q: append a%d is missing", got, i+1)
					}
				}
			})
		})
	}
}
