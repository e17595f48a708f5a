package catalog

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// mergePlan is the outcome of a three-way merge computed outside the write
// transaction.
type mergePlan struct {
	target, source, base *Commit
	// tree is the merged tree, computed against target; fastForward is
	// set when it is source's tree and the merge may move the branch to
	// source.
	tree        *Tree
	fastForward bool
}

// Merge implements Service. The merge is computed optimistically against
// the target's head (opening table metadata where both sides appended) and
// committed in one write transaction. If the head has moved meanwhile, the
// merge's changes rebase onto the new head when it did not touch the same
// tables or namespaces; otherwise the merge starts over from the new head,
// up to MaxRetries times, so that changes to the same table on both sides
// end in a conflict (or combined appends) exactly as without the race.
func (l *Local) Merge(ctx context.Context, req MergeRequest) (*MergeResult, error) {
	for attempt := 0; ; attempt++ {
		res, retry, err := l.mergeOnce(ctx, req)
		if !retry || attempt >= l.opts.MaxRetries {
			if retry {
				err = errdefs.WithHint(errdefs.ErrConflict, "try again", "branch %s kept moving during the merge", req.Into)
			}
			return res, err
		}
	}
}

func (l *Local) mergeOnce(ctx context.Context, req MergeRequest) (*MergeResult, bool, error) {
	var p mergePlan
	var baseTree, targetTree, sourceTree *Tree
	err := l.store.View(ctx, func(tx Tx) (err error) {
		if req.Into != MainBranch { // main takes merges; other checks still apply
			if _, err := l.writableBranch(tx, req.Into); err != nil {
				return err
			}
		}
		id, err := tx.GetRef(KindBranch, string(req.Into))
		if errdefs.Is(err, errdefs.ErrNotFound) {
			return l.branchNotFound(tx, req.Into)
		} else if err != nil {
			return err
		}
		if p.target, err = tx.GetCommit(id); err != nil {
			return err
		}
		if p.source, err = l.resolve(tx, req.Source); err != nil {
			return err
		}
		if p.base, err = mergeBase(tx, p.target, p.source); err != nil {
			return err
		}
		if p.base == nil {
			return errdefs.New(errdefs.ErrFailedPrecondition, "%s and %s share no history", req.Source, req.Into)
		}
		if targetTree, err = l.tree(tx, p.target); err != nil {
			return err
		}
		if sourceTree, err = l.tree(tx, p.source); err != nil {
			return err
		}
		baseTree, err = l.tree(tx, p.base)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	res := &MergeResult{Base: p.base.ID}
	switch {
	case p.base.ID == p.source.ID:
		res.Outcome, res.Commit = "up-to-date", p.target
		return res, false, nil
	case p.base.ID == p.target.ID && req.Mode != MergeNoFF:
		p.tree, p.fastForward = sourceTree, true
	case req.Mode == MergeFFOnly:
		return nil, false, errdefs.WithHint(errdefs.ErrFailedPrecondition, "drop --ff-only to create a merge commit",
			"cannot fast-forward %s to %s: the branches have diverged since %s", req.Into, req.Source, p.base.ID.Short())
	default:
		tree, combined, conflicts, err := l.threeWay(ctx, baseTree, targetTree, sourceTree)
		if err != nil {
			return nil, false, err
		}
		if len(conflicts) > 0 {
			return nil, false, &MergeConflictError{Source: req.Source.String(), Into: string(req.Into), Conflicts: conflicts}
		}
		p.tree, res.Combined = tree, combined
	}

	// A merge that has to start over returns no error from the write
	// transaction, so that the store waits until the commit that moved
	// the branch is durable before the next attempt reads the branch: each
	// attempt that fails then stands for one commit by someone else.
	retry := false
	err = l.store.Update(ctx, func(tx Tx) error {
		head, err := tx.GetRef(KindBranch, string(req.Into))
		if err != nil {
			return err
		}
		switch {
		case p.fastForward && head == p.target.ID:
			res.Outcome, res.Commit = "fast-forward", p.source
			res.Changed = changedTables(targetTree, sourceTree)
			return tx.PutRef(KindBranch, string(req.Into), p.source.ID)
		case p.fastForward && req.Mode == MergeFFOnly:
			retry = true
			return nil
		}
		// A merge commit, on the new head if the branch moved (no
		// fast-forward any more).
		retry, err = l.commitMerge(tx, head, &p, targetTree, req, res)
		return err
	})
	if err != nil || retry {
		return nil, retry, err
	}
	return res, false, nil
}

// commitMerge stores the merge commit of p.source into the branch, whose
// head is now head, and moves the branch to it. p.tree is the merge
// computed against p.target, whose tree is targetTree. If the branch has
// moved since p.target, the merge's changes rebase onto head, as
// CommitTables does, unless a table or namespace they touch also changed
// there (or the result breaks a tree invariant): then it writes nothing
// and returns retry, and the merge starts over from head, which settles
// whether the changes truly conflict.
func (l *Local) commitMerge(tx Tx, head CommitID, p *mergePlan, targetTree *Tree, req MergeRequest, res *MergeResult) (retry bool, err error) {
	parent, parentTree, tree := p.target, targetTree, p.tree
	if head != p.target.ID {
		if parent, err = tx.GetCommit(head); err != nil {
			return false, err
		}
		if parentTree, err = l.tree(tx, parent); err != nil {
			return false, err
		}
		ch := treeChanges(targetTree, p.tree)
		if len(ch.movedBetween(targetTree, parentTree)) > 0 {
			return true, nil
		}
		tree = ch.apply(parentTree)
		if checkTree(tree) != nil {
			return true, nil
		}
	}
	opts := req.Commit
	if opts.Message == "" {
		opts.Message = fmt.Sprintf("merge %s into %s", req.Source, req.Into)
	}
	c, err := l.putCommit(tx, l.newCommit(opts, parent, p.source), tree)
	if err != nil {
		return false, err
	}
	res.Outcome, res.Commit = "merge", c
	res.Changed = changedTables(parentTree, tree)
	return false, tx.PutRef(KindBranch, string(req.Into), c.ID)
}

// threeWay merges source into target given their base, table by table: a
// table changed on one side only takes that side; changed on both sides is
// a conflict unless both only appended, in which case the TableFormat
// combines the appended files.
func (l *Local) threeWay(ctx context.Context, base, target, source *Tree) (*Tree, []string, []Conflict, error) {
	out := target.Clone()
	var conflicts []Conflict
	var combined []string

	for _, ns := range unionKeys(base.Namespaces, target.Namespaces, source.Namespaces) {
		b, bok := base.Namespaces[ns]
		t, tok := target.Namespaces[ns]
		s, sok := source.Namespaces[ns]
		same := sameNamespace
		switch {
		case same(s, sok, b, bok), same(t, tok, s, sok):
		case same(t, tok, b, bok):
			if sok {
				out.Namespaces[ns] = s
			} else {
				delete(out.Namespaces, ns)
			}
		default:
			conflicts = append(conflicts, Conflict{Name: "namespace " + string(ns), Reason: "changed on both sides"})
		}
	}

	ids := unionKeys(base.Tables, target.Tables, source.Tables)
	for _, id := range ids {
		b, bok := base.Tables[id]
		t, tok := target.Tables[id]
		s, sok := source.Tables[id]
		same := sameTable
		switch {
		case same(s, sok, b, bok), same(t, tok, s, sok):
			// Source did not change it, or both made the same change.
		case same(t, tok, b, bok):
			if sok {
				out.Tables[id] = s
			} else {
				delete(out.Tables, id)
			}
		case !bok:
			conflicts = append(conflicts, Conflict{Name: id.String(), Reason: "created on both sides"})
		case !tok || !sok:
			conflicts = append(conflicts, Conflict{Name: id.String(), Reason: "removed on one side and changed on the other"})
		default:
			merged, ok, err := l.format.MergeAppends(ctx, id, b, t, s)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("merging appends to %s: %w", id, err)
			}
			if !ok {
				conflicts = append(conflicts, Conflict{Name: id.String(), Reason: "changed on both sides (not only appends)"})
				continue
			}
			out.Tables[id] = merged
			combined = append(combined, id.String())
		}
	}
	if len(conflicts) == 0 {
		for _, id := range out.TableNames("") {
			if _, ok := out.Namespaces[id.Namespace]; !ok {
				conflicts = append(conflicts, Conflict{Name: "namespace " + string(id.Namespace),
					Reason: "removed on one side while table " + id.String() + " was added or kept on the other"})
			}
		}
	}
	return out, combined, conflicts, nil
}

// unionKeys returns the sorted union of the keys of maps.
func unionKeys[K comparable, V any](ms ...map[K]V) []K {
	set := map[K]struct{}{}
	for _, m := range ms {
		for k := range m {
			set[k] = struct{}{}
		}
	}
	keys := slices.Collect(maps.Keys(set))
	slices.SortFunc(keys, func(a, b K) int { return cmpKey(a, b) })
	return keys
}

func cmpKey[K comparable](a, b K) int {
	switch x := any(a).(type) {
	case TableIdent:
		y := any(b).(TableIdent)
		if x.Less(y) {
			return -1
		} else if y.Less(x) {
			return 1
		}
		return 0
	case Namespace:
		y := any(b).(Namespace)
		if x < y {
			return -1
		} else if x > y {
			return 1
		}
		return 0
	}
	return 0
}

// changedTables lists tables whose state differs between two trees.
func changedTables(a, b *Tree) []string {
	var out []string
	for _, id := range unionKeys(a.Tables, b.Tables) {
		x, xok := a.Tables[id]
		y, yok := b.Tables[id]
		if xok != yok || x.MetadataLocation != y.MetadataLocation {
			out = append(out, id.String())
		}
	}
	return out
}

// Diff implements Service.
func (l *Local) Diff(ctx context.Context, from, to Ref, opts DiffOptions) (*DiffResult, error) {
	var a, b *Tree
	res := &DiffResult{}
	err := l.store.View(ctx, func(tx Tx) error {
		ca, err := l.resolve(tx, from)
		if err != nil {
			return err
		}
		cb, err := l.resolve(tx, to)
		if err != nil {
			return err
		}
		res.From, res.To = ca.ID, cb.ID
		if a, err = l.tree(tx, ca); err != nil {
			return err
		}
		b, err = l.tree(tx, cb)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, ns := range unionKeys(a.Namespaces, b.Namespaces) {
		_, aok := a.Namespaces[ns]
		_, bok := b.Namespaces[ns]
		switch {
		case aok && !bok:
			res.Namespaces = append(res.Namespaces, NamespaceDiff{Namespace: string(ns), Change: "removed"})
		case !aok && bok:
			res.Namespaces = append(res.Namespaces, NamespaceDiff{Namespace: string(ns), Change: "added"})
		}
	}
	for _, id := range unionKeys(a.Tables, b.Tables) {
		x, xok := a.Tables[id]
		y, yok := b.Tables[id]
		d := TableDiff{Table: id.String(), FromSnapshot: x.SnapshotID, ToSnapshot: y.SnapshotID}
		switch {
		case xok && !yok:
			d.Change = "removed"
		case !xok && yok:
			d.Change = "added"
		case x.MetadataLocation != y.MetadataLocation:
			d.Change = "changed"
			if opts.Schema && x.SchemaID != y.SchemaID || opts.Schema && x.TableUUID != y.TableUUID {
				if d.Schema, err = l.format.SchemaDiff(ctx, x, y); err != nil {
					return nil, fmt.Errorf("schema diff of %s: %w", id, err)
				}
			}
		default:
			continue
		}
		res.Tables = append(res.Tables, d)
	}
	return res, nil
}
