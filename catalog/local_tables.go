package catalog

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// commitChanges applies changes to branch in one new commit. base is the
// commit the changes were computed against; if the branch has moved since,
// the changes rebase onto its head unless a changed table or namespace also
// changed there. A change set that leaves the tree as it is creates no
// commit and returns the head.
func (l *Local) commitChanges(ctx context.Context, branch BranchName, base CommitID, ch Changes, opts CommitOptions) (*Commit, error) {
	var out *Commit
	err := l.store.Update(ctx, func(tx Tx) error {
		head, err := l.writableBranch(tx, branch)
		if err != nil {
			return err
		}
		headTree, err := l.tree(tx, head)
		if err != nil {
			return err
		}
		if base != "" && base != head.ID {
			if err := l.checkRebase(tx, base, head, headTree, ch); err != nil {
				return err
			}
		}
		tree := ch.apply(headTree)
		if err := checkTree(tree); err != nil {
			return err
		}
		if tree.ComputeID() == head.Tree {
			out = head
			return nil
		}
		c, err := l.putCommit(tx, l.newCommit(opts, head), tree)
		if err != nil {
			return err
		}
		out = c
		return tx.PutRef(KindBranch, string(branch), c.ID)
	})
	return out, err
}

// checkRebase fails with ErrConflict if anything ch changes was also changed
// between base and head.
func (l *Local) checkRebase(tx Tx, base CommitID, head *Commit, headTree *Tree, ch Changes) error {
	bc, err := tx.GetCommit(base)
	if err != nil {
		return fmt.Errorf("base commit: %w", err)
	}
	baseTree, err := l.tree(tx, bc)
	if err != nil {
		return err
	}
	conflicts := ch.movedBetween(baseTree, headTree)
	if len(conflicts) == 0 {
		return nil
	}
	return errdefs.WithHint(errdefs.ErrConflict, "re-run the operation on the new head",
		"%s changed on the branch since commit %s (head is now %s)", strings.Join(conflicts, ", "), bc.ID.Short(), head.ID.Short())
}

// checkTree enforces tree invariants: every table's namespace exists.
func checkTree(t *Tree) error {
	for _, id := range t.TableNames("") {
		if _, ok := t.Namespaces[id.Namespace]; !ok {
			return errdefs.WithHint(errdefs.ErrFailedPrecondition,
				"remove its tables first (`lakehouse table rm`)",
				"namespace %s is not empty: it holds table %s", id.Namespace, id)
		}
	}
	return nil
}

// viewAt runs fn with the commit and tree at ref.
func (l *Local) viewAt(ctx context.Context, ref Ref, fn func(tx Tx, c *Commit, t *Tree) error) error {
	return l.store.View(ctx, func(tx Tx) error {
		c, err := l.resolve(tx, ref)
		if err != nil {
			return err
		}
		t, err := l.tree(tx, c)
		if err != nil {
			return err
		}
		return fn(tx, c, t)
	})
}

// branchState returns the head and tree of a writable branch.
func (l *Local) branchState(ctx context.Context, b BranchName) (head *Commit, tree *Tree, err error) {
	err = l.store.View(ctx, func(tx Tx) error {
		if head, err = l.writableBranch(tx, b); err != nil {
			return err
		}
		tree, err = l.tree(tx, head)
		return err
	})
	return head, tree, err
}

func namespaceNotFound(ns Namespace, where string, t *Tree) error {
	names := make([]string, 0, len(t.Namespaces))
	for n := range t.Namespaces {
		names = append(names, string(n))
	}
	hint := fmt.Sprintf("create it with `lakehouse namespace create %s`", ns)
	if s := suggest(string(ns), names); s != "" {
		hint = "did you mean " + s + "? or " + hint
	}
	return errdefs.WithHint(errdefs.ErrNotFound, hint, "namespace %s does not exist on %s", ns, where)
}

func tableNotFound(id TableIdent, where string, t *Tree) error {
	names := make([]string, 0, len(t.Tables))
	for n := range t.Tables {
		names = append(names, n.String())
	}
	hint := fmt.Sprintf("list tables with `lakehouse table ls -r %s`", where)
	if s := suggest(id.String(), names); s != "" {
		hint = "did you mean " + s + "? " + hint
	}
	return errdefs.WithHint(errdefs.ErrNotFound, hint, "table %s does not exist at %s", id, where)
}

// ListNamespaces implements Service.
func (l *Local) ListNamespaces(ctx context.Context, ref Ref) ([]Namespace, error) {
	var out []Namespace
	err := l.viewAt(ctx, ref, func(_ Tx, _ *Commit, t *Tree) error {
		out = slices.Sorted(maps.Keys(t.Namespaces))
		return nil
	})
	return out, err
}

// CreateNamespace implements Service.
func (l *Local) CreateNamespace(ctx context.Context, b BranchName, ns Namespace, opts CommitOptions) (*Commit, error) {
	head, tree, err := l.branchState(ctx, b)
	if err != nil {
		return nil, err
	}
	if _, ok := tree.Namespaces[ns]; ok {
		return nil, errdefs.New(errdefs.ErrAlreadyExists, "namespace %s already exists on %s", ns, b)
	}
	if opts.Message == "" {
		opts.Message = "create namespace " + string(ns)
	}
	return l.commitChanges(ctx, b, head.ID, Changes{Namespaces: map[Namespace]*NamespaceEntry{ns: {}}}, opts)
}

// DeleteNamespace implements Service.
func (l *Local) DeleteNamespace(ctx context.Context, b BranchName, ns Namespace, opts CommitOptions) (*Commit, error) {
	head, tree, err := l.branchState(ctx, b)
	if err != nil {
		return nil, err
	}
	if _, ok := tree.Namespaces[ns]; !ok {
		return nil, namespaceNotFound(ns, string(b), tree)
	}
	if opts.Message == "" {
		opts.Message = "remove namespace " + string(ns)
	}
	return l.commitChanges(ctx, b, head.ID, Changes{Namespaces: map[Namespace]*NamespaceEntry{ns: nil}}, opts)
}

// ListTables implements Service.
func (l *Local) ListTables(ctx context.Context, ref Ref, ns Namespace) ([]TableSummary, error) {
	var out []TableSummary
	err := l.viewAt(ctx, ref, func(_ Tx, _ *Commit, t *Tree) error {
		if _, ok := t.Namespaces[ns]; ns != "" && !ok {
			return namespaceNotFound(ns, ref.String(), t)
		}
		for _, id := range t.TableNames(ns) {
			e := t.Tables[id]
			out = append(out, TableSummary{Ident: id, Namespace: id.Namespace, Name: id.Name,
				SnapshotID: e.SnapshotID, Metadata: e.MetadataLocation})
		}
		return nil
	})
	return out, err
}

// TableEntry implements Service.
func (l *Local) TableEntry(ctx context.Context, ref Ref, id TableIdent) (TableEntry, *Commit, error) {
	var (
		out TableEntry
		at  *Commit
	)
	err := l.viewAt(ctx, ref, func(_ Tx, c *Commit, t *Tree) error {
		e, ok := t.Tables[id]
		if !ok {
			if _, nsok := t.Namespaces[id.Namespace]; !nsok {
				return namespaceNotFound(id.Namespace, ref.String(), t)
			}
			return tableNotFound(id, ref.String(), t)
		}
		out, at = e, c
		return nil
	})
	return out, at, err
}

// GetTable implements Service.
func (l *Local) GetTable(ctx context.Context, ref Ref, id TableIdent) (*TableInfo, error) {
	e, c, err := l.TableEntry(ctx, ref, id)
	if err != nil {
		return nil, err
	}
	info, err := l.format.Describe(ctx, id, e)
	if err != nil {
		return nil, fmt.Errorf("table %s at %s: %w", id, ref, err)
	}
	info.Ident, info.Namespace, info.Name, info.Commit = id, id.Namespace, id.Name, c.ID
	return info, nil
}

// DeleteTable implements Service.
func (l *Local) DeleteTable(ctx context.Context, b BranchName, id TableIdent, opts CommitOptions) (*Commit, error) {
	head, tree, err := l.branchState(ctx, b)
	if err != nil {
		return nil, err
	}
	if _, ok := tree.Tables[id]; !ok {
		return nil, tableNotFound(id, string(b), tree)
	}
	if opts.Message == "" {
		opts.Message = "remove table " + id.String()
	}
	return l.commitChanges(ctx, b, head.ID, Changes{Tables: map[TableIdent]*TableEntry{id: nil}}, opts)
}

// RevertTable implements Service.
func (l *Local) RevertTable(ctx context.Context, b BranchName, id TableIdent, from Ref, opts CommitOptions) (*Commit, error) {
	head, tree, err := l.branchState(ctx, b)
	if err != nil {
		return nil, err
	}
	var (
		src     *TableEntry
		srcNS   NamespaceEntry
		srcHash CommitID
	)
	err = l.viewAt(ctx, from, func(_ Tx, c *Commit, t *Tree) error {
		srcHash = c.ID
		if e, ok := t.Tables[id]; ok {
			src, srcNS = &e, t.Namespaces[id.Namespace]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	_, exists := tree.Tables[id]
	if src == nil && !exists {
		return nil, tableNotFound(id, string(b)+" or "+from.String(), tree)
	}
	ch := Changes{Tables: map[TableIdent]*TableEntry{id: src}}
	if _, ok := tree.Namespaces[id.Namespace]; src != nil && !ok {
		ch.Namespaces = map[Namespace]*NamespaceEntry{id.Namespace: &srcNS}
	}
	if opts.Message == "" {
		opts.Message = fmt.Sprintf("revert table %s to %s (%s)", id, from, srcHash.Short())
	}
	return l.commitChanges(ctx, b, head.ID, ch, opts)
}

// CommitTables implements Service.
func (l *Local) CommitTables(ctx context.Context, b BranchName, base CommitID, ch Changes, opts CommitOptions) (*Commit, error) {
	if opts.Message == "" {
		opts.Message = fmt.Sprintf("commit %d table(s)", len(ch.Tables))
	}
	return l.commitChanges(ctx, b, base, ch, opts)
}

// CheckImport returns the error ImportTable would return for req before
// it looks at the sources (which CheckImport ignores): a bad mode, a
// branch that does not exist or takes no direct writes, a namespace
// missing on it, or partitioning asked of an existing table. A client
// checks an import with it before it sends its files.
func (l *Local) CheckImport(ctx context.Context, req ImportRequest) error {
	if err := checkImportMode(&req); err != nil {
		return err
	}
	_, _, err := l.importTarget(ctx, req)
	return err
}

// checkImportMode sets the default mode and checks it.
func checkImportMode(req *ImportRequest) error {
	if req.Mode == "" {
		req.Mode = ImportAppend
	}
	if !req.Mode.Valid() {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, ImportModeHint, "unknown import mode %q", req.Mode)
	}
	return nil
}

// importTarget returns the head of the branch an import writes and the
// table's entry there (nil for a new table), with the errors of
// CheckImport.
func (l *Local) importTarget(ctx context.Context, req ImportRequest) (head *Commit, current *TableEntry, err error) {
	err = l.store.View(ctx, func(tx Tx) error {
		head, current, err = l.importTargetIn(tx, req)
		return err
	})
	return head, current, err
}

// importTargetIn is importTarget in a transaction.
func (l *Local) importTargetIn(tx Tx, req ImportRequest) (*Commit, *TableEntry, error) {
	head, err := l.writableBranch(tx, req.Branch)
	if err != nil {
		return nil, nil, err
	}
	tree, err := l.tree(tx, head)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := tree.Namespaces[req.Table.Namespace]; !ok {
		return nil, nil, namespaceNotFound(req.Table.Namespace, string(req.Branch), tree)
	}
	e, ok := tree.Tables[req.Table]
	if !ok {
		return head, nil, nil
	}
	if len(req.PartitionBy) > 0 && req.Mode != ImportReplace {
		return nil, nil, PartitionByExistingError(req.Table)
	}
	return head, &e, nil
}

// ImportTable implements Service.
func (l *Local) ImportTable(ctx context.Context, req ImportRequest) (*ImportResult, error) {
	if err := checkImportMode(&req); err != nil {
		return nil, err
	}
	if len(req.Sources) == 0 && len(req.Staged) == 0 {
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "name files, directories or globs with --from", "nothing to import")
	}
	// The writer record goes in with the read of the branch (see
	// writers.go): gc keeps the head this import builds on.
	var (
		head    *Commit
		current *TableEntry
		writer  string
	)
	err := l.store.Update(ctx, func(tx Tx) (err error) {
		if head, current, err = l.importTargetIn(tx, req); err != nil {
			return err
		}
		writer, err = putWriter(tx, "import into "+req.Table.String(), head.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer l.endWriter(ctx, writer)
	spec := ImportSpec{Ident: req.Table, Sources: req.Sources, Staged: req.Staged, Mode: req.Mode, PartitionBy: req.PartitionBy,
		SnapshotProperties: req.Commit.Properties, Current: current, Progress: req.Progress}
	out, err := l.format.Import(ctx, spec)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{Table: req.Table, Created: out.Created, Imported: out.Imported, Skipped: out.Skipped,
		Rows: out.Rows, Bytes: out.Bytes, Warnings: out.Warnings}
	if spec.Current != nil && out.Entry.MetadataLocation == spec.Current.MetadataLocation {
		return res, nil
	}
	opts := req.Commit
	if opts.Message == "" {
		opts.Message = fmt.Sprintf("import %d file(s) into %s (%s)", len(out.Imported), req.Table, req.Mode)
	}
	e := out.Entry
	c, err := l.commitChanges(ctx, req.Branch, head.ID, Changes{Tables: map[TableIdent]*TableEntry{req.Table: &e}}, opts)
	if err != nil {
		return nil, err
	}
	res.Commit = c
	return res, nil
}
