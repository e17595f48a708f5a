package catalog

import (
	"container/heap"
	"context"
	"fmt"
	"iter"
	"math/bits"
	"slices"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// This file holds the commit-graph algorithms: finding commits by prefix,
// ancestry, merge base and history walks. They run inside a store
// transaction and do no I/O besides it.

// findCommit returns the one commit whose id starts with prefix.
func findCommit(tx Tx, prefix string) (*Commit, error) {
	ids, err := tx.FindCommits(prefix, 5)
	if err != nil {
		return nil, err
	}
	switch len(ids) {
	case 0:
		return nil, errdefs.WithHint(errdefs.ErrNotFound, "list commits with `lakehouse log`",
			"no commit starts with %s", prefix)
	case 1:
		if exp, err := isExpired(tx, ids[0]); err != nil || exp {
			if err == nil {
				err = expiredError(ids[0])
			}
			return nil, err
		}
		return tx.GetCommit(ids[0])
	default:
		short := make([]string, len(ids))
		for i, id := range ids {
			short[i] = id.Short()
		}
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "give more characters of the hash",
			"commit prefix %s is ambiguous: it matches %s", prefix, strings.Join(short, ", "))
	}
}

// commitQueue is a max-heap of commits by (Height desc, Time desc, ID asc):
// children always come out before their parents, because a child is
// higher; among equals the newest comes first, so logs read in time order.
type commitQueue []*Commit

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	if q[i].Height != q[j].Height {
		return q[i].Height > q[j].Height
	}
	if !q[i].Time.Equal(q[j].Time) {
		return q[i].Time.After(q[j].Time)
	}
	return q[i].ID < q[j].ID
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(*Commit)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// walkHistory calls fn for each commit reachable from start, highest first
// (so every commit comes before its parents), until fn returns false. It
// stops where history expired (gcroots.go).
func walkHistory(tx Tx, start *Commit, fn func(*Commit) (bool, error)) error {
	seen := map[CommitID]bool{start.ID: true}
	q := &commitQueue{start}
	for q.Len() > 0 {
		c := heap.Pop(q).(*Commit)
		more, err := fn(c)
		if err != nil || !more {
			return err
		}
		for _, p := range c.Parents {
			if seen[p] {
				continue
			}
			seen[p] = true
			if exp, err := isExpired(tx, p); err != nil || exp {
				if err != nil {
					return err
				}
				continue
			}
			pc, err := tx.GetCommit(p)
			if err != nil {
				return fmt.Errorf("parent %s of commit %s: %w", p.Short(), c.ID.Short(), err)
			}
			heap.Push(q, pc)
		}
	}
	return nil
}

// isAncestor reports whether anc is from or one of its ancestors.
func isAncestor(tx Tx, anc, from *Commit) (bool, error) {
	found := false
	err := walkHistory(tx, from, func(c *Commit) (bool, error) {
		if c.ID == anc.ID {
			found = true
			return false, nil
		}
		// Commits come highest first: once below anc's height, anc cannot
		// come any more; at its height, another commit may still be anc.
		return c.Height >= anc.Height, nil
	})
	return found, err
}

// mergeBase returns the best common ancestor of a and b: of all commits
// that are ancestors of both (each commit counts as its own ancestor), the
// one with the greatest height, ties broken by the latest time, then the
// smallest id. It returns
// nil if the two histories share no commit.
//
// Commits come off the queue highest first; since every child is higher
// than its parents, a commit's marks are complete when it is popped, so the
// first commit popped with both marks is the answer.
func mergeBase(tx Tx, a, b *Commit) (*Commit, error) {
	if a.ID == b.ID {
		return a, nil
	}
	const fromA, fromB = 1, 2
	marks := map[CommitID]uint8{a.ID: fromA}
	marks[b.ID] |= fromB
	q := &commitQueue{a}
	if b.ID != a.ID {
		heap.Push(q, b)
	}
	for q.Len() > 0 {
		c := heap.Pop(q).(*Commit)
		m := marks[c.ID]
		if m == fromA|fromB {
			return c, nil
		}
		for _, p := range c.Parents {
			pm, seen := marks[p]
			marks[p] = pm | m
			if seen {
				continue
			}
			pc, err := tx.GetCommit(p)
			if err != nil {
				return nil, fmt.Errorf("parent %s of commit %s: %w", p.Short(), c.ID.Short(), err)
			}
			heap.Push(q, pc)
		}
	}
	return nil, nil
}

// mergeBases returns the merge bases (as mergeBase picks them) of every
// two of heads, each once, in the order found. It walks the union of the
// heads' histories once, highest first, carrying in each commit's mark
// the set of heads it descends from; the first commit whose mark holds
// both i and j is mergeBase of heads i and j, for the reason mergeBase
// gives. The walk ends once every pair has its base, so with heads that
// share recent history it reads little beyond them. Like mergeBase it
// walks through expired history: merges look for their base there too.
func mergeBases(ctx context.Context, tx Tx, heads []CommitID) ([]CommitID, error) {
	var uniq []CommitID
	for _, h := range heads {
		if !slices.Contains(uniq, h) {
			uniq = append(uniq, h)
		}
	}
	n := len(uniq)
	if n < 2 {
		return nil, nil
	}
	words := (n + 63) / 64
	// found[i] holds j once the pair (i, j) has its base.
	found := make([]headSet, n)
	for i := range found {
		found[i] = make(headSet, words)
		found[i].add(i)
	}
	pairs := n * (n - 1) / 2
	marks := make(map[CommitID]headSet, 4*n)
	q := &commitQueue{}
	for i, id := range uniq {
		c, err := tx.GetCommit(id)
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", id.Short(), err)
		}
		marks[id] = make(headSet, words)
		marks[id].add(i)
		heap.Push(q, c)
	}
	var bases []CommitID
	for q.Len() > 0 && pairs > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := heap.Pop(q).(*Commit)
		m := marks[c.ID]
		isBase := false
		for i := range m.all() {
			for w := range words {
				fresh := m[w] &^ found[i][w]
				for fresh != 0 {
					j := w*64 + bits.TrailingZeros64(fresh)
					fresh &= fresh - 1
					found[i].add(j)
					found[j].add(i)
					pairs--
					isBase = true
				}
			}
		}
		if isBase {
			bases = append(bases, c.ID)
		}
		for _, p := range c.Parents {
			pm, seen := marks[p]
			if !seen {
				pc, err := tx.GetCommit(p)
				if err != nil {
					return nil, fmt.Errorf("parent %s of commit %s: %w", p.Short(), c.ID.Short(), err)
				}
				pm = make(headSet, words)
				marks[p] = pm
				heap.Push(q, pc)
			}
			pm.or(m)
		}
	}
	return bases, nil
}

// headSet is a set of small integers (indexes of heads), a bitset.
type headSet []uint64

func (s headSet) add(i int) { s[i/64] |= 1 << (i % 64) }

func (s headSet) or(t headSet) {
	for w := range s {
		s[w] |= t[w]
	}
}

// all yields the members of s in increasing order.
func (s headSet) all() iter.Seq[int] {
	return func(yield func(int) bool) {
		for w, x := range s {
			for x != 0 {
				if !yield(w*64 + bits.TrailingZeros64(x)) {
					return
				}
				x &= x - 1
			}
		}
	}
}
