package catalog

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// keptStates returns the table states of every kept commit (see gc.go),
// one per metadata file, and how many commits were kept. cutoff zero keeps
// all history. Commits of holds are kept; branches in ignore are not
// roots.
func (l *Local) keptStates(ctx context.Context, cutoff time.Time, holds []Hold, ignore []BranchName) ([]TableEntry, int, error) {
	var states []TableEntry
	kept := map[CommitID]bool{}
	err := l.store.View(ctx, func(tx Tx) error {
		var heads []CommitID
		for _, kind := range []RefKind{KindBranch, KindTag} {
			refs, err := tx.ListRefs(kind)
			if err != nil {
				return err
			}
			for _, r := range refs {
				if kind == KindBranch && slices.Contains(ignore, BranchName(r.Name)) {
					continue
				}
				heads = append(heads, r.Commit)
			}
		}
		for _, h := range holds {
			heads = append(heads, h.Commits...)
		}
		if err := keepHistory(ctx, tx, heads, cutoff, kept); err != nil {
			return err
		}
		seenTree := map[TreeID]bool{}
		seenState := map[string]bool{}
		for _, id := range slices.Sorted(maps.Keys(kept)) {
			c, err := tx.GetCommit(id)
			if err != nil {
				return gcDamaged("commit "+id.Short(), err)
			}
			if seenTree[c.Tree] {
				continue
			}
			seenTree[c.Tree] = true
			t, err := tx.GetTree(c.Tree)
			if err != nil {
				return gcDamaged("the tree of commit "+id.Short(), err)
			}
			for _, tid := range t.TableNames("") {
				e := t.Tables[tid]
				if !seenState[e.MetadataLocation] {
					seenState[e.MetadataLocation] = true
					states = append(states, e)
				}
			}
		}
		return nil
	})
	return states, len(kept), err
}

// keepHistory marks in kept the commits kept from heads: with a zero
// cutoff every ancestor; otherwise each head, every ancestor made at or
// after cutoff, and the parents of those (the states in effect at the
// cutoff, which time travel to it reads). Commit times never decrease
// along history, so the walk stops at the first commit before the cutoff
// on every path.
func keepHistory(ctx context.Context, tx Tx, heads []CommitID, cutoff time.Time, kept map[CommitID]bool) error {
	stack := slices.Clone(heads)
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if kept[id] {
			continue
		}
		c, err := tx.GetCommit(id)
		if err != nil {
			return gcDamaged("commit "+id.Short(), err)
		}
		kept[id] = true
		if cutoff.IsZero() || !c.Time.Before(cutoff) {
			stack = append(stack, c.Parents...)
		}
	}
	return nil
}

// gcDamaged is the error of a collection that cannot know what is kept:
// deleting anything then could delete what a damaged state needs.
func gcDamaged(what string, err error) error {
	return errdefs.WithHint(errdefs.ErrFailedPrecondition, "run `lakehouse doctor` and repair the catalog first",
		"gc stopped before deleting anything: %s cannot be read (%v)", what, unhinted(err))
}
