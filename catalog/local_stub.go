package catalog

import (
	"context"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// TEMPORARY stubs; replaced by the real implementation.

func (l *Local) ListBranches(ctx context.Context) ([]BranchInfo, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) GetBranch(ctx context.Context, name BranchName) (BranchInfo, error) {
	return BranchInfo{}, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) CreateBranch(ctx context.Context, name BranchName, from Ref) (BranchInfo, error) {
	return BranchInfo{}, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) DeleteBranch(ctx context.Context, name BranchName) error {
	return errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) RenameBranch(ctx context.Context, from, to BranchName) (BranchInfo, error) {
	return BranchInfo{}, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) ListTags(ctx context.Context) ([]TagInfo, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) CreateTag(ctx context.Context, name TagName, from Ref) (TagInfo, error) {
	return TagInfo{}, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) DeleteTag(ctx context.Context, name TagName) error {
	return errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) Resolve(ctx context.Context, ref Ref) (*Commit, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) Log(ctx context.Context, ref Ref, limit int) ([]*Commit, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) ListNamespaces(ctx context.Context, ref Ref) ([]Namespace, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) CreateNamespace(ctx context.Context, branch BranchName, ns Namespace, opts CommitOptions) (*Commit, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) DeleteNamespace(ctx context.Context, branch BranchName, ns Namespace, opts CommitOptions) (*Commit, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) ListTables(ctx context.Context, ref Ref, ns Namespace) ([]TableSummary, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) GetTable(ctx context.Context, ref Ref, id TableIdent) (*TableInfo, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) TableEntry(ctx context.Context, ref Ref, id TableIdent) (TableEntry, *Commit, error) {
	return TableEntry{}, nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) DeleteTable(ctx context.Context, branch BranchName, id TableIdent, opts CommitOptions) (*Commit, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) TableHistory(ctx context.Context, ref Ref, id TableIdent, limit int) ([]TableChange, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) RevertTable(ctx context.Context, branch BranchName, id TableIdent, from Ref, opts CommitOptions) (*Commit, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) ImportTable(ctx context.Context, req ImportRequest) (*ImportResult, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) CommitTables(ctx context.Context, branch BranchName, base CommitID, changes Changes, opts CommitOptions) (*Commit, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) Merge(ctx context.Context, req MergeRequest) (*MergeResult, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) Diff(ctx context.Context, from, to Ref, opts DiffOptions) (*DiffResult, error) {
	return nil, errdefs.New(errdefs.ErrInternal, "not implemented")
}

func (l *Local) bootstrap(ctx context.Context) error { return nil }
