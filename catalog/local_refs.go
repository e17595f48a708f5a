package catalog

import (
	"context"
	"fmt"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	suggestpkg "github.com/lakehouse-dev/lakehouse/internal/suggest"
)

// resolve returns the commit ref denotes.
func (l *Local) resolve(tx Tx, ref Ref) (*Commit, error) {
	if ref.Name == "" {
		return findCommit(tx, ref.Commit)
	}
	headID, _, err := l.head(tx, ref.Name)
	if err != nil {
		return nil, err
	}
	head, err := tx.GetCommit(headID)
	if err != nil {
		return nil, err
	}
	switch {
	case ref.Commit != "":
		c, err := findCommit(tx, ref.Commit)
		if err != nil {
			return nil, err
		}
		ok, err := isAncestor(tx, c, head)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errdefs.WithHint(errdefs.ErrNotFound,
				fmt.Sprintf("use @%s for the commit itself, or see `lakehouse log %s`", ref.Commit, ref.Name),
				"commit %s is not in the history of %s", c.ID.Short(), ref.Name)
		}
		return c, nil
	case !ref.Time.IsZero():
		c := head
		for {
			if !c.Time.After(ref.Time) {
				return c, nil
			}
			if len(c.Parents) == 0 {
				return nil, errdefs.WithHint(errdefs.ErrNotFound,
					fmt.Sprintf("its first commit is at %s", c.Time.Format("2006-01-02T15:04:05Z07:00")),
					"%s has no commit at or before %s", ref.Name, ref.Time.Format("2006-01-02T15:04:05Z07:00"))
			}
			if exp, err := isExpired(tx, c.Parents[0]); err != nil || exp {
				if err == nil {
					err = errdefs.WithHint(errdefs.ErrNotFound,
						fmt.Sprintf("its history before %s expired (gc --expire-commits); `lakehouse log %s` shows what is kept",
							c.Time.Format("2006-01-02T15:04:05Z07:00"), ref.Name),
						"%s has no commit kept at or before %s", ref.Name, ref.Time.Format("2006-01-02T15:04:05Z07:00"))
				}
				return nil, err
			}
			if c, err = tx.GetCommit(c.Parents[0]); err != nil {
				return nil, err
			}
		}
	default:
		return head, nil
	}
}

// head returns the commit a branch or tag named name points at, trying
// branches first.
func (l *Local) head(tx Tx, name string) (CommitID, RefKind, error) {
	id, err := tx.GetRef(KindBranch, name)
	if err == nil {
		return id, KindBranch, nil
	}
	if !errdefs.Is(err, errdefs.ErrNotFound) {
		return "", "", err
	}
	id, err = tx.GetRef(KindTag, name)
	if err == nil {
		return id, KindTag, nil
	}
	if !errdefs.Is(err, errdefs.ErrNotFound) {
		return "", "", err
	}
	var names []string
	for _, k := range []RefKind{KindBranch, KindTag} {
		refs, err := tx.ListRefs(k)
		if err != nil {
			return "", "", err
		}
		for _, r := range refs {
			names = append(names, r.Name)
		}
	}
	hint := "list them with `lakehouse branch ls` and `lakehouse tag ls`"
	if s := suggest(name, names); s != "" {
		hint = "did you mean " + s + "? " + hint
	}
	return "", "", errdefs.WithHint(errdefs.ErrNotFound, hint, "no branch or tag named %q", name)
}

// writableBranch returns the head of a branch that may take a direct write:
// it exists, and it is not main (which takes writes only by merge).
func (l *Local) writableBranch(tx Tx, b BranchName) (*Commit, error) {
	if b == MainBranch {
		return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"work on a branch (`lakehouse checkout -b <user>.<name>`), then `lakehouse merge <user>.<name> --into main`",
			"main takes writes only by merge")
	}
	id, err := tx.GetRef(KindBranch, string(b))
	if errdefs.Is(err, errdefs.ErrNotFound) {
		if _, terr := tx.GetRef(KindTag, string(b)); terr == nil {
			return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition,
				fmt.Sprintf("create a branch from it: `lakehouse branch create <user>.<name> --from-ref %s`", b),
				"%s is a tag, and tags are read-only", b)
		}
		return nil, errdefs.WithHint(errdefs.ErrNotFound,
			fmt.Sprintf("create it with `lakehouse branch create %s`", b), "branch %s does not exist", b)
	}
	if err != nil {
		return nil, err
	}
	return tx.GetCommit(id)
}

func (l *Local) branchInfo(tx Tx, name string, id CommitID) (BranchInfo, error) {
	c, err := tx.GetCommit(id)
	if err != nil {
		return BranchInfo{}, err
	}
	return BranchInfo{Name: BranchName(name), Head: id, Commit: c}, nil
}

// ListBranches implements Service.
func (l *Local) ListBranches(ctx context.Context) ([]BranchInfo, error) {
	var out []BranchInfo
	err := l.store.View(ctx, func(tx Tx) error {
		refs, err := tx.ListRefs(KindBranch)
		if err != nil {
			return err
		}
		out = make([]BranchInfo, 0, len(refs))
		for _, r := range refs {
			bi, err := l.branchInfo(tx, r.Name, r.Commit)
			if err != nil {
				return err
			}
			out = append(out, bi)
		}
		return nil
	})
	return out, err
}

// GetBranch implements Service.
func (l *Local) GetBranch(ctx context.Context, name BranchName) (BranchInfo, error) {
	var out BranchInfo
	err := l.store.View(ctx, func(tx Tx) error {
		id, err := tx.GetRef(KindBranch, string(name))
		if errdefs.Is(err, errdefs.ErrNotFound) {
			return l.branchNotFound(tx, name)
		}
		if err != nil {
			return err
		}
		out, err = l.branchInfo(tx, string(name), id)
		return err
	})
	return out, err
}

func (l *Local) branchNotFound(tx Tx, name BranchName) error {
	refs, err := tx.ListRefs(KindBranch)
	if err != nil {
		return err
	}
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Name
	}
	hint := fmt.Sprintf("create it with `lakehouse branch create %s`", name)
	if s := suggest(string(name), names); s != "" {
		hint = "did you mean " + s + "? or " + hint
	}
	return errdefs.WithHint(errdefs.ErrNotFound, hint, "branch %s does not exist", name)
}

// refNameFree fails if name is taken by a branch or a tag.
func refNameFree(tx Tx, name string) error {
	for _, k := range []RefKind{KindBranch, KindTag} {
		if _, err := tx.GetRef(k, name); err == nil {
			return errdefs.WithHint(errdefs.ErrAlreadyExists, "pick another name",
				"a %s named %s already exists", k, name)
		} else if !errdefs.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return nil
}

// CreateBranch implements Service.
func (l *Local) CreateBranch(ctx context.Context, name BranchName, from Ref) (BranchInfo, error) {
	var out BranchInfo
	err := l.store.Update(ctx, func(tx Tx) error {
		if err := refNameFree(tx, string(name)); err != nil {
			return err
		}
		c, err := l.resolve(tx, from)
		if err != nil {
			return err
		}
		if err := tx.PutRef(KindBranch, string(name), c.ID); err != nil {
			return err
		}
		out = BranchInfo{Name: name, Head: c.ID, Commit: c}
		return nil
	})
	return out, err
}

// DeleteBranch implements Service.
func (l *Local) DeleteBranch(ctx context.Context, name BranchName) error {
	if name == MainBranch {
		return errdefs.New(errdefs.ErrFailedPrecondition, "main cannot be deleted")
	}
	return l.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.GetRef(KindBranch, string(name)); errdefs.Is(err, errdefs.ErrNotFound) {
			return l.branchNotFound(tx, name)
		} else if err != nil {
			return err
		}
		return tx.DeleteRef(KindBranch, string(name))
	})
}

// RenameBranch implements Service.
func (l *Local) RenameBranch(ctx context.Context, from, to BranchName) (BranchInfo, error) {
	if from == MainBranch || to == MainBranch {
		return BranchInfo{}, errdefs.New(errdefs.ErrFailedPrecondition, "main cannot be renamed, nor can a branch take its name")
	}
	var out BranchInfo
	err := l.store.Update(ctx, func(tx Tx) error {
		id, err := tx.GetRef(KindBranch, string(from))
		if errdefs.Is(err, errdefs.ErrNotFound) {
			return l.branchNotFound(tx, from)
		} else if err != nil {
			return err
		}
		if err := refNameFree(tx, string(to)); err != nil {
			return err
		}
		if err := tx.DeleteRef(KindBranch, string(from)); err != nil {
			return err
		}
		if err := tx.PutRef(KindBranch, string(to), id); err != nil {
			return err
		}
		out, err = l.branchInfo(tx, string(to), id)
		return err
	})
	return out, err
}

// ListTags implements Service.
func (l *Local) ListTags(ctx context.Context) ([]TagInfo, error) {
	var out []TagInfo
	err := l.store.View(ctx, func(tx Tx) error {
		refs, err := tx.ListRefs(KindTag)
		if err != nil {
			return err
		}
		out = make([]TagInfo, len(refs))
		for i, r := range refs {
			out[i] = TagInfo{Name: TagName(r.Name), Commit: r.Commit}
		}
		return nil
	})
	return out, err
}

// CreateTag implements Service.
func (l *Local) CreateTag(ctx context.Context, name TagName, from Ref) (TagInfo, error) {
	var out TagInfo
	err := l.store.Update(ctx, func(tx Tx) error {
		if err := refNameFree(tx, string(name)); err != nil {
			return err
		}
		c, err := l.resolve(tx, from)
		if err != nil {
			return err
		}
		out = TagInfo{Name: name, Commit: c.ID}
		return tx.PutRef(KindTag, string(name), c.ID)
	})
	return out, err
}

// DeleteTag implements Service.
func (l *Local) DeleteTag(ctx context.Context, name TagName) error {
	return l.store.Update(ctx, func(tx Tx) error {
		err := tx.DeleteRef(KindTag, string(name))
		if errdefs.Is(err, errdefs.ErrNotFound) {
			return errdefs.WithHint(errdefs.ErrNotFound, "list tags with `lakehouse tag ls`", "tag %s does not exist", name)
		}
		return err
	})
}

// Resolve implements Service.
func (l *Local) Resolve(ctx context.Context, ref Ref) (*Commit, error) {
	var out *Commit
	err := l.store.View(ctx, func(tx Tx) (err error) {
		out, err = l.resolve(tx, ref)
		return err
	})
	return out, err
}

// Log implements Service.
func (l *Local) Log(ctx context.Context, ref Ref, limit int) ([]*Commit, error) {
	var out []*Commit
	err := l.store.View(ctx, func(tx Tx) error {
		start, err := l.resolve(tx, ref)
		if err != nil {
			return err
		}
		return walkHistory(tx, start, func(c *Commit) (bool, error) {
			out = append(out, c)
			return limit <= 0 || len(out) < limit, nil
		})
	})
	return out, err
}

// suggest returns the candidate closest to name, or "" if none is a
// likely typo of it.
func suggest(name string, candidates []string) string {
	return suggestpkg.Closest(name, candidates, 0)
}
