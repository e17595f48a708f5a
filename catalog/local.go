package catalog

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// LocalOptions configure a Local service.
type LocalOptions struct {
	// Author is recorded on commits whose CommitOptions name none.
	// Default: $LAKEHOUSE_USER, else the OS user name, else "lakehouse".
	Author string
	// Now returns the commit time. Default: time.Now in UTC.
	Now func() time.Time
	// MaxRetries bounds optimistic retries of merges when the target branch
	// moves during the merge. Default 5.
	MaxRetries int
}

// Validate checks the options and fills in defaults.
func (o *LocalOptions) Validate() error {
	if o.Author == "" {
		o.Author = DefaultAuthor()
	}
	if o.Now == nil {
		o.Now = func() time.Time { return time.Now().UTC() }
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 5
	}
	if o.MaxRetries < 0 {
		return fmt.Errorf("MaxRetries %d is negative: %w", o.MaxRetries, errdefs.ErrInvalidArgument)
	}
	return nil
}

// DefaultAuthor is $LAKEHOUSE_USER, else the OS user name, else "lakehouse".
func DefaultAuthor() string {
	if u := os.Getenv("LAKEHOUSE_USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "lakehouse"
}

// Local is the in-process catalog service: versioning rules over a Store,
// table data through a TableFormat.
type Local struct {
	store  Store
	format TableFormat
	opts   LocalOptions
	trees  treeCache
}

var _ Service = (*Local)(nil)

// NewLocal returns a service over store and format. On a new store it
// creates main with a first commit holding the default namespace.
func NewLocal(ctx context.Context, store Store, format TableFormat, opts LocalOptions) (*Local, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := &Local{store: store, format: format, opts: opts}
	if err := l.bootstrap(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Close closes the store.
func (l *Local) Close() error { return l.store.Close() }

// Store is the store under the service, for the records kept beside the
// catalog (API keys). Do not change refs, commits or trees through it.
func (l *Local) Store() Store { return l.store }

// bootstrap creates main with a first commit holding the default namespace
// when the store has no main branch yet.
func (l *Local) bootstrap(ctx context.Context) error {
	return l.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.GetRef(KindBranch, string(MainBranch)); err == nil {
			return nil
		} else if !errdefs.Is(err, errdefs.ErrNotFound) {
			return err
		}
		tree := NewTree()
		tree.Namespaces[DefaultNamespace] = NamespaceEntry{}
		root := &Commit{
			Height:  1,
			Author:  "lakehouse",
			Message: "initial commit",
			Time:    l.opts.Now(),
		}
		c, err := l.putCommit(tx, root, tree)
		if err != nil {
			return err
		}
		return tx.PutRef(KindBranch, string(MainBranch), c.ID)
	})
}

// putCommit stores tree and c (whose Tree and ID it fills in).
func (l *Local) putCommit(tx Tx, c *Commit, tree *Tree) (*Commit, error) {
	tid := tree.ComputeID()
	if err := tx.PutTree(tid, tree); err != nil {
		return nil, err
	}
	l.trees.add(tid, tree)
	c.Tree = tid
	c.ID = c.ComputeID()
	if err := tx.PutCommit(c); err != nil {
		return nil, err
	}
	return c, nil
}

// tree returns the tree of c, from the cache when possible. Trees are
// immutable, so a cached tree is always current.
func (l *Local) tree(tx Tx, c *Commit) (*Tree, error) {
	if t := l.trees.get(c.Tree); t != nil {
		return t, nil
	}
	t, err := tx.GetTree(c.Tree)
	if err != nil {
		return nil, fmt.Errorf("tree of commit %s: %w", c.ID.Short(), err)
	}
	l.trees.add(c.Tree, t)
	return t, nil
}

// newCommit builds the descriptive part of a commit from opts.
func (l *Local) newCommit(opts CommitOptions, parents ...*Commit) *Commit {
	c := &Commit{
		Author:     opts.Author,
		Message:    opts.Message,
		Time:       l.opts.Now(),
		Properties: opts.Properties,
	}
	if c.Author == "" {
		c.Author = l.opts.Author
	}
	for _, p := range parents {
		c.Parents = append(c.Parents, p.ID)
		c.Height = max(c.Height, p.Height+1)
		// Keep time non-decreasing along history, so that time-travel refs
		// stay meaningful if the clock steps back.
		if c.Time.Before(p.Time) {
			c.Time = p.Time
		}
	}
	return c
}
