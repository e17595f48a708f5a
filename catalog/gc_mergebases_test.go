package catalog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// graphTx is a commit graph in memory: the part of a Tx the graph
// algorithms read.
type graphTx struct {
	Tx
	commits map[CommitID]*Commit
	ids     []CommitID
}

func (g *graphTx) GetCommit(id CommitID) (*Commit, error) {
	if c, ok := g.commits[id]; ok {
		return c, nil
	}
	return nil, errdefs.New(errdefs.ErrNotFound, "commit %s", id)
}

// randomGraph builds n commits, each with one parent, or two (a merge)
// one time in five, among the last window commits (branches that live
// that long); several roots, and times that tie often.
func randomGraph(rng *rand.Rand, n, window int) *graphTx {
	g := &graphTx{commits: map[CommitID]*Commit{}}
	t0 := time.Unix(1e9, 0)
	for i := range n {
		c := &Commit{ID: CommitID(fmt.Sprintf("%08x%04d", rng.Uint32(), i)), Time: t0.Add(time.Duration(i/3) * time.Minute)}
		if i >= 3 {
			lo := max(0, i-window)
			parents := 1 + min(1, rng.IntN(5)/4)
			for range parents {
				p := g.ids[lo+rng.IntN(i-lo)]
				if !slices.Contains(c.Parents, p) {
					c.Parents = append(c.Parents, p)
					c.Height = max(c.Height, g.commits[p].Height+1)
				}
			}
		}
		g.commits[c.ID] = c
		g.ids = append(g.ids, c.ID)
	}
	return g
}

// TestMergeBasesOfHeads: one walk finds, for every two heads, the merge
// base mergeBase finds for the two alone.
func TestMergeBasesOfHeads(t *testing.T) {
	t.Parallel()
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		g := randomGraph(rng, 50+rng.IntN(300), 5+rng.IntN(40))
		heads := make([]CommitID, 2+rng.IntN(70))
		for i := range heads {
			heads[i] = g.ids[rng.IntN(len(g.ids))]
		}
		want := map[CommitID]bool{}
		for i, a := range heads {
			for _, b := range heads[i+1:] {
				if a == b {
					continue
				}
				base, err := mergeBase(g, g.commits[a], g.commits[b])
				if err != nil {
					t.Fatal(err)
				}
				if base != nil {
					want[base.ID] = true
				}
			}
		}
		got, err := mergeBases(context.Background(), g, heads)
		if err != nil {
			t.Fatal(err)
		}
		gotSet := map[CommitID]bool{}
		for _, id := range got {
			if gotSet[id] {
				t.Fatalf("seed %d: %s found twice", seed, id)
			}
			gotSet[id] = true
		}
		for id := range want {
			if !gotSet[id] {
				t.Fatalf("seed %d: merge base %s of two heads not found (%d found, %d wanted)", seed, id, len(got), len(want))
			}
		}
		for id := range gotSet {
			if !want[id] {
				t.Fatalf("seed %d: %s is the merge base of no two heads", seed, id)
			}
		}
	}
}

// BenchmarkMergeBases: the merge bases of 300 heads (branches of a
// 100,000-commit history) in one walk, against 44,850 mergeBase calls.
func BenchmarkMergeBases(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	g := randomGraph(rng, 100_000, 400)
	heads := make([]CommitID, 300)
	for i := range heads {
		heads[i] = g.ids[len(g.ids)-1-rng.IntN(2000)]
	}
	b.Run("one-walk", func(b *testing.B) {
		for b.Loop() {
			if _, err := mergeBases(context.Background(), g, heads); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pairwise", func(b *testing.B) {
		for b.Loop() {
			for i, a := range heads {
				for _, h := range heads[i+1:] {
					if _, err := mergeBase(g, g.commits[a], g.commits[h]); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	})
}
