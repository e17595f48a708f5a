package flight

import (
	"context"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// Branches of the write bodies (see Scoped).
func (b CreateRefBody) Branches() []string    { return []string{b.Name} }
func (b NameBody) Branches() []string         { return []string{b.Name} }
func (b RenameBody) Branches() []string       { return []string{b.From, b.To} }
func (b NamespaceBody) Branches() []string    { return []string{b.Branch} }
func (b TableBody) Branches() []string        { return []string{b.Branch} }
func (b ImportBody) Branches() []string       { return []string{b.Branch} }
func (b CommitTablesBody) Branches() []string { return []string{b.Branch} }
func (b MergeBody) Branches() []string {
	src, _, _ := strings.Cut(b.Source, "@")
	return []string{b.Into, src}
}

// parseRef reads a ref of a body; "" is the zero ref.
func parseRef(s string) (catalog.Ref, error) {
	if s == "" {
		return catalog.Ref{}, nil
	}
	return catalog.ParseRef(s)
}

func parseBranch(s string) (catalog.BranchName, error) { return catalog.ParseBranchName(s) }

func parseTable(ns, name string) (catalog.TableIdent, error) {
	return catalog.ParseTableIdent(ns+"."+name, "")
}

// registerCatalog adds the actions of catalog.Service.
func (s *Server) registerCatalog() {
	svc := func() catalog.Service { return s.opts.Catalog }

	unary(s, ActionListBranches, "list branches", PermRead, func(ctx context.Context, _ struct{}) (any, error) {
		bs, err := svc().ListBranches(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]Branch, len(bs))
		for i, b := range bs {
			out[i] = wireBranch(b)
		}
		return out, nil
	})
	unary(s, ActionGetBranch, "describe a branch", PermRead, func(ctx context.Context, b NameBody) (any, error) {
		name, err := parseBranch(b.Name)
		if err != nil {
			return nil, err
		}
		info, err := svc().GetBranch(ctx, name)
		if err != nil {
			return nil, err
		}
		return wireBranch(info), nil
	})
	unary(s, ActionCreateBranch, "create a branch", PermWrite, func(ctx context.Context, b CreateRefBody) (any, error) {
		name, err := parseBranch(b.Name)
		if err != nil {
			return nil, err
		}
		from, err := catalog.ParseRef(b.From)
		if err != nil {
			return nil, err
		}
		info, err := svc().CreateBranch(ctx, name, from)
		if err != nil {
			return nil, err
		}
		return wireBranch(info), nil
	})
	unary(s, ActionDeleteBranch, "delete a branch", PermWrite, func(ctx context.Context, b NameBody) (any, error) {
		name, err := parseBranch(b.Name)
		if err != nil {
			return nil, err
		}
		return nil, svc().DeleteBranch(ctx, name)
	})
	unary(s, ActionRenameBranch, "rename a branch", PermWrite, func(ctx context.Context, b RenameBody) (any, error) {
		from, err := parseBranch(b.From)
		if err != nil {
			return nil, err
		}
		to, err := parseBranch(b.To)
		if err != nil {
			return nil, err
		}
		info, err := svc().RenameBranch(ctx, from, to)
		if err != nil {
			return nil, err
		}
		return wireBranch(info), nil
	})
	unary(s, ActionListTags, "list tags", PermRead, func(ctx context.Context, _ struct{}) (any, error) {
		return svc().ListTags(ctx)
	})
	unary(s, ActionCreateTag, "create a tag", PermTag, func(ctx context.Context, b CreateRefBody) (any, error) {
		name, err := catalog.ParseTagName(b.Name)
		if err != nil {
			return nil, err
		}
		from, err := catalog.ParseRef(b.From)
		if err != nil {
			return nil, err
		}
		return svc().CreateTag(ctx, name, from)
	})
	unary(s, ActionDeleteTag, "delete a tag", PermTag, func(ctx context.Context, b NameBody) (any, error) {
		name, err := catalog.ParseTagName(b.Name)
		if err != nil {
			return nil, err
		}
		return nil, svc().DeleteTag(ctx, name)
	})
	unary(s, ActionResolve, "resolve a ref to its commit", PermRead, func(ctx context.Context, b RefBody) (any, error) {
		ref, err := parseRef(b.Ref)
		if err != nil {
			return nil, err
		}
		c, err := svc().Resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		return WireCommit(c), nil
	})
	unary(s, ActionLog, "list the commits of a ref", PermRead, func(ctx context.Context, b RefBody) (any, error) {
		ref, err := parseRef(b.Ref)
		if err != nil {
			return nil, err
		}
		cs, err := svc().Log(ctx, ref, b.Limit)
		if err != nil {
			return nil, err
		}
		return wireCommits(cs), nil
	})
	unary(s, ActionListNamespaces, "list namespaces", PermRead, func(ctx context.Context, b RefBody) (any, error) {
		ref, err := parseRef(b.Ref)
		if err != nil {
			return nil, err
		}
		ns, err := svc().ListNamespaces(ctx, ref)
		if ns == nil {
			ns = []catalog.Namespace{}
		}
		return ns, err
	})
	nsWrite := func(del bool) func(ctx context.Context, b NamespaceBody) (any, error) {
		return func(ctx context.Context, b NamespaceBody) (any, error) {
			branch, err := parseBranch(b.Branch)
			if err != nil {
				return nil, err
			}
			ns, err := catalog.ParseNamespace(b.Namespace)
			if err != nil {
				return nil, err
			}
			var c *catalog.Commit
			if del {
				c, err = svc().DeleteNamespace(ctx, branch, ns, s.author(ctx, b.Commit))
			} else {
				c, err = svc().CreateNamespace(ctx, branch, ns, s.author(ctx, b.Commit))
			}
			if err != nil {
				return nil, err
			}
			return WireCommit(c), nil
		}
	}
	unary(s, ActionCreateNamespace, "create a namespace", PermWrite, nsWrite(false))
	unary(s, ActionDeleteNamespace, "delete an empty namespace", PermWrite, nsWrite(true))
	unary(s, ActionListTables, "list tables", PermRead, func(ctx context.Context, b TablesBody) (any, error) {
		ref, err := parseRef(b.Ref)
		if err != nil {
			return nil, err
		}
		var ns catalog.Namespace
		if b.Namespace != "" {
			if ns, err = catalog.ParseNamespace(b.Namespace); err != nil {
				return nil, err
			}
		}
		ts, err := svc().ListTables(ctx, ref, ns)
		if ts == nil {
			ts = []catalog.TableSummary{}
		}
		return ts, err
	})
	unary(s, ActionGetTable, "describe a table", PermRead, func(ctx context.Context, b TableBody) (any, error) {
		ref, id, err := refTable(b)
		if err != nil {
			return nil, err
		}
		return svc().GetTable(ctx, ref, id)
	})
	unary(s, ActionTableEntry, "a table's raw catalog entry", PermRead, func(ctx context.Context, b TableBody) (any, error) {
		ref, id, err := refTable(b)
		if err != nil {
			return nil, err
		}
		e, c, err := svc().TableEntry(ctx, ref, id)
		if err != nil {
			return nil, err
		}
		return TableEntryResult{Entry: e, Commit: WireCommit(c)}, nil
	})
	unary(s, ActionDeleteTable, "delete a table", PermWrite, func(ctx context.Context, b TableBody) (any, error) {
		branch, id, err := branchTable(b)
		if err != nil {
			return nil, err
		}
		c, err := svc().DeleteTable(ctx, branch, id, s.author(ctx, b.Commit))
		if err != nil {
			return nil, err
		}
		return WireCommit(c), nil
	})
	unary(s, ActionTableHistory, "the commits that changed a table", PermRead, func(ctx context.Context, b TableBody) (any, error) {
		ref, id, err := refTable(b)
		if err != nil {
			return nil, err
		}
		hs, err := svc().TableHistory(ctx, ref, id, b.Limit)
		if err != nil {
			return nil, err
		}
		out := make([]TableChange, len(hs))
		for i, h := range hs {
			out[i] = TableChange{Commit: WireCommit(h.Commit), Change: h.Change, SnapshotID: h.SnapshotID,
				ReplacedSnapshotID: h.ReplacedSnapshotID, MetadataLocation: h.MetadataLocation}
		}
		return out, nil
	})
	unary(s, ActionRevertTable, "set a table to its state at a ref", PermWrite, func(ctx context.Context, b TableBody) (any, error) {
		branch, id, err := branchTable(b)
		if err != nil {
			return nil, err
		}
		from, err := catalog.ParseRef(b.From)
		if err != nil {
			return nil, err
		}
		c, err := svc().RevertTable(ctx, branch, id, from, s.author(ctx, b.Commit))
		if err != nil {
			return nil, err
		}
		return WireCommit(c), nil
	})
	unary(s, ActionCommitTables, "commit table changes in one commit", PermWrite, func(ctx context.Context, b CommitTablesBody) (any, error) {
		branch, err := parseBranch(b.Branch)
		if err != nil {
			return nil, err
		}
		ch := catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{}, Namespaces: map[catalog.Namespace]*catalog.NamespaceEntry{}}
		for name, e := range b.Tables {
			id, err := catalog.ParseTableIdent(name, "")
			if err != nil {
				return nil, err
			}
			ch.Tables[id] = e
		}
		for name, e := range b.Namespaces {
			ns, err := catalog.ParseNamespace(name)
			if err != nil {
				return nil, err
			}
			ch.Namespaces[ns] = e
		}
		c, err := svc().CommitTables(ctx, branch, b.Base, ch, s.author(ctx, b.Commit))
		if err != nil {
			return nil, err
		}
		return WireCommit(c), nil
	})
	unary(s, ActionMerge, "merge a ref into a branch", PermMerge, func(ctx context.Context, b MergeBody) (any, error) {
		src, err := catalog.ParseRef(b.Source)
		if err != nil {
			return nil, err
		}
		into, err := parseBranch(b.Into)
		if err != nil {
			return nil, err
		}
		res, err := svc().Merge(ctx, catalog.MergeRequest{Source: src, Into: into, Mode: catalog.MergeMode(b.Mode), Commit: s.author(ctx, b.Commit)})
		if err != nil {
			return nil, err
		}
		return MergeResult{Outcome: res.Outcome, Base: res.Base, Commit: WireCommit(res.Commit), Changed: res.Changed, Combined: res.Combined}, nil
	})
	unary(s, ActionDiff, "compare two refs", PermRead, func(ctx context.Context, b DiffBody) (any, error) {
		from, err := catalog.ParseRef(b.From)
		if err != nil {
			return nil, err
		}
		to, err := catalog.ParseRef(b.To)
		if err != nil {
			return nil, err
		}
		return svc().Diff(ctx, from, to, catalog.DiffOptions{Schema: b.Schema})
	})
}

// registerServerInfo adds ActionServerInfo, which every server answers.
func (s *Server) registerServerInfo() {
	unary(s, ActionServerInfo, "describe the server, its host and the caller", PermRead, func(ctx context.Context, b ServerInfoBody) (any, error) {
		p := PrincipalFrom(ctx)
		info := ServerInfo{Version: s.opts.Version, Role: s.opts.Role, Auth: s.opts.Auth != nil}
		if s.opts.Auth != nil {
			info.User, info.UserRole = p.User, string(p.Role)
		}
		if s.opts.Host != nil {
			h, err := s.opts.Host(ctx, b)
			if err != nil {
				return nil, err
			}
			info.HostInfo = h
		}
		return info, nil
	})
}

func refTable(b TableBody) (catalog.Ref, catalog.TableIdent, error) {
	ref, err := parseRef(b.Ref)
	if err != nil {
		return ref, catalog.TableIdent{}, err
	}
	id, err := parseTable(b.Namespace, b.Table)
	return ref, id, err
}

func branchTable(b TableBody) (catalog.BranchName, catalog.TableIdent, error) {
	branch, err := parseBranch(b.Branch)
	if err != nil {
		return "", catalog.TableIdent{}, err
	}
	id, err := parseTable(b.Namespace, b.Table)
	return branch, id, err
}
