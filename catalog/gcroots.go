package catalog

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Expired history. A collection with a commit retention lets the history
// older than it go: the files only those commits reference are deleted,
// so the commits themselves leave the history too. Each one is recorded
// as expired (the commit stays stored: ids and merge bases still resolve
// through it); a log, a time-travel ref or an ancestry check stops where
// history expired, a commit id of expired history is not found, and
// neither gc nor doctor walks past it. The table states of an expired
// commit that is the merge base of two kept ones stay (keepMergeBases):
// merging those two reads them, so doctor checks them too.
//
//	records/expired/<commit id>  RFC 3339 time of the gc that expired it

//	records/gc/history-cutoff    RFC 3339 (nano) time: the latest cutoff
//	                             applied; the table snapshots made before
//	                             it, and what only they reference, went

const expiredRecordKind = "expired"

const gcRecordKind, historyCutoffKey = "gc", "history-cutoff"

// historyCutoff returns the latest cutoff a gc applied (zero: none).
func historyCutoff(tx Tx) (time.Time, error) {
	v, err := tx.GetRecord(gcRecordKind, historyCutoffKey)
	if errdefs.Is(err, errdefs.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return time.Time{}, gcDamaged("the record of the history gc expired", err)
	}
	return t, nil
}

// isExpired reports whether a gc expired the commit id.
func isExpired(tx Tx, id CommitID) (bool, error) {
	_, err := tx.GetRecord(expiredRecordKind, string(id))
	if errdefs.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// expiredError is the error of a ref to an expired commit.
func expiredError(id CommitID) error {
	return errdefs.WithHint(errdefs.ErrNotFound, "`lakehouse log` shows the history kept",
		"commit %s is of history that gc expired (past its --expire-commits retention)", id.Short())
}

// keptWalk walks the history a collection keeps (see gc.go) and what doctor
// checks, from heads: with a zero cutoff every ancestor; otherwise each
// head, every ancestor made at or after cutoff, and the parents of those
// (the states in effect at the cutoff, which time travel to it reads).
// Commit times never decrease along history, so the walk stops at the
// first commit before the cutoff on every path. It never enters history
// expired before.
type keptWalk struct {
	cutoff time.Time
	// damaged is called for a commit (tree "") or a commit's tree that
	// cannot be read, or (id "") for history whose merge bases cannot be
	// found: an error stops the walk, nil goes on without it.
	damaged func(id CommitID, tree TreeID, err error) error
	// state is called once per table state (metadata file), with the
	// first commit that names it.
	state func(id TableIdent, e TableEntry, at CommitID)

	// kept are the commits walked (read or not); cut the parents the
	// cutoff left out, edge the commits with a parent cut or expired
	// before; commits and trees count those read.
	kept           map[CommitID]bool
	cut, edge      []CommitID
	commits, trees int

	seenTree  map[TreeID]bool
	seenState map[string]bool
}

// walk walks from heads, depth first, in the order of heads from the last.
func (w *keptWalk) walk(ctx context.Context, tx Tx, heads []CommitID) error {
	w.kept = map[CommitID]bool{}
	w.seenTree, w.seenState = map[TreeID]bool{}, map[string]bool{}
	stack := slices.Clone(heads)
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if w.kept[id] {
			continue
		}
		w.kept[id] = true
		c, err := tx.GetCommit(id)
		if err != nil {
			if err := w.damaged(id, "", err); err != nil {
				return err
			}
			continue
		}
		w.commits++
		edge := false
		for _, p := range c.Parents {
			exp, err := isExpired(tx, p)
			switch {
			case err != nil:
				return err
			case exp:
				edge = true
			case w.cutoff.IsZero() || !c.Time.Before(w.cutoff):
				stack = append(stack, p)
			default:
				w.cut = append(w.cut, p)
				edge = true
			}
		}
		if edge {
			w.edge = append(w.edge, id)
		}
		if err := w.tree(tx, c); err != nil {
			return err
		}
	}
	return nil
}

// tree passes the table states of commit c's tree, read once, to w.state.
func (w *keptWalk) tree(tx Tx, c *Commit) error {
	if w.seenTree[c.Tree] {
		return nil
	}
	w.seenTree[c.Tree] = true
	t, err := tx.GetTree(c.Tree)
	if err != nil {
		return w.damaged(c.ID, c.Tree, err)
	}
	w.trees++
	for _, tid := range slices.SortedFunc(maps.Keys(t.Tables), func(a, b TableIdent) int {
		return strings.Compare(a.String(), b.String())
	}) {
		e := t.Tables[tid]
		if !w.seenState[e.MetadataLocation] {
			w.seenState[e.MetadataLocation] = true
			w.state(tid, e, c.ID)
		}
	}
	return nil
}

// keepMergeBases keeps, after walk, the table states of the merge bases
// that the walk left out (history past the cutoff, or expired before) of
// any two commits it kept: a later merge of two refs to kept commits, or
// of branches made from them, reads its base's states (MergeAppends) even
// though the base left the log. Those are the merge bases of every two
// edge commits (kept, with a parent not kept): a path from a kept commit
// to a base not kept leaves the kept history at an edge commit, so the
// base is a common ancestor of two edges, and the best one of them, as it
// is the best of the two kept commits' (whose ancestors the edges' are).
// The bases are not kept otherwise; they are recorded as expired like
// their history, and a merge still finds them (mergeBase walks expired
// history). It returns how many bases it kept so. Without history expired
// (no edges) it reads nothing.
func (w *keptWalk) keepMergeBases(ctx context.Context, tx Tx) (int, error) {
	bases, err := mergeBases(ctx, tx, w.edge)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return 0, cerr
		}
		return 0, w.damaged("", "", err)
	}
	n := 0
	for _, id := range bases {
		if w.kept[id] {
			continue
		}
		c, err := tx.GetCommit(id)
		if err != nil {
			if err := w.damaged(id, "", err); err != nil {
				return n, err
			}
			continue
		}
		if err := w.tree(tx, c); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// expire records as expired, at now, the history the cutoff left out: the
// commits reachable from w.cut that were not kept nor expired before. It
// returns how many there were; with dryRun it records nothing.
func (w *keptWalk) expire(ctx context.Context, tx Tx, now time.Time, dryRun bool) (int, error) {
	stamp := []byte(now.UTC().Format(time.RFC3339))
	seen := map[CommitID]bool{}
	stack := slices.Clone(w.cut)
	n := 0
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if w.kept[id] || seen[id] {
			continue
		}
		seen[id] = true
		if exp, err := isExpired(tx, id); err != nil || exp {
			if err != nil {
				return n, err
			}
			continue
		}
		c, err := tx.GetCommit(id)
		if err != nil {
			return n, gcDamaged("commit "+id.Short(), err)
		}
		stack = append(stack, c.Parents...)
		n++
		if !dryRun {
			if err := tx.PutRecord(expiredRecordKind, string(id), stamp); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// keptHistory is what a collection keeps of the catalog's history.
type keptHistory struct {
	// states are the table states of every kept commit, one per metadata
	// file.
	states []TableEntry
	// commits counts the kept commits, expired those the cutoff expired;
	// mergeBases the merge bases of kept commits among the latter, or
	// expired before, whose states are kept all the same.
	commits, expired, mergeBases int
	// since is the latest cutoff applied, by this collection or an
	// earlier one: the table snapshots made before it are not kept.
	since time.Time
}

// keptStates returns what a collection keeps (see gc.go): cutoff zero
// keeps all history. Commits of holds are kept; branches in ignore are
// not roots. Unless dryRun, the expired commits are recorded so in the
// same transaction that found them, so that no ref can be made to one
// meanwhile.
func (l *Local) keptStates(ctx context.Context, cutoff, now time.Time, holds []Hold, ignore []BranchName, dryRun bool) (*keptHistory, error) {
	var h *keptHistory
	walk := func(tx Tx) error {
		h = &keptHistory{}
		since, err := historyCutoff(tx)
		if err != nil {
			return err
		}
		if cutoff.After(since) {
			if h.since = cutoff; !dryRun {
				if err := tx.PutRecord(gcRecordKind, historyCutoffKey, []byte(cutoff.UTC().Format(time.RFC3339Nano))); err != nil {
					return err
				}
			}
		} else {
			h.since = since
		}
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
		w := &keptWalk{
			cutoff: cutoff,
			damaged: func(id CommitID, tree TreeID, err error) error {
				switch {
				case id == "":
					return gcDamaged("the history of the branches and tags", err)
				case tree == "":
					return gcDamaged("commit "+id.Short(), err)
				}
				return gcDamaged("the tree of commit "+id.Short(), err)
			},
			state: func(_ TableIdent, e TableEntry, _ CommitID) { h.states = append(h.states, e) },
		}
		if err := w.walk(ctx, tx, heads); err != nil {
			return err
		}
		if !cutoff.IsZero() || !since.IsZero() {
			if h.mergeBases, err = w.keepMergeBases(ctx, tx); err != nil {
				return err
			}
		}
		h.commits = len(w.kept)
		h.expired, err = w.expire(ctx, tx, now, dryRun)
		return err
	}
	var err error
	if dryRun || cutoff.IsZero() {
		err = l.store.View(ctx, walk)
	} else {
		err = l.store.Update(ctx, walk)
	}
	return h, err
}

// gcDamaged is the error of a collection that cannot know what is kept:
// deleting anything then could delete what a damaged state needs.
func gcDamaged(what string, err error) error {
	return errdefs.WithHint(errdefs.ErrFailedPrecondition, "run `lakehouse doctor` and repair the catalog first",
		"gc stopped before deleting anything: %s cannot be read (%v)", what, unhinted(err))
}
