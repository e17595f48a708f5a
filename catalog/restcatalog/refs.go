package restcatalog

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// target is the branch a write lands on and the head it is computed
// against, with the namespaces there.
type target struct {
	branch     catalog.BranchName
	head       catalog.CommitID
	namespaces map[catalog.Namespace]catalog.NamespaceEntry
}

// at is the ref of the head commit.
func (t *target) at() catalog.Ref { return catalog.Ref{Commit: string(t.head)} }

// writable returns the target of a write through c's ref: a branch other
// than main that the caller may write.
func (h *Handler) writable(c *call) (*target, error) {
	ctx := c.r.Context()
	ref := c.ref
	if !ref.IsBranchHead() || ref.Name == "" {
		return nil, forbidden("%s is a commit, and commits are read-only: write through a branch's catalog URI (%s<branch>)",
			c.refStr, h.opts.Mount)
	}
	if ref.Name == string(catalog.MainBranch) {
		return nil, forbidden("main takes writes only by merge: write to a branch (create one with `lakehouse branch create <user>.<name>` "+
			"and use the catalog URI %s<user>.<name>), then `lakehouse merge <user>.<name> --into main`", h.opts.Mount)
	}
	b, err := h.opts.Catalog.GetBranch(ctx, catalog.BranchName(ref.Name))
	if errdefs.Is(err, errdefs.ErrNotFound) {
		if _, rerr := h.opts.Catalog.Resolve(ctx, ref); rerr != nil {
			return nil, refError(rerr)
		}
		return nil, forbidden("%s is a tag, and tags are read-only: create a branch from it (`lakehouse branch create <user>.<name> --from-ref %s`) and write there",
			ref.Name, ref.Name)
	}
	if err != nil {
		return nil, err
	}
	if err := c.who.Allow(flight.PermWrite, ref.Name); err != nil {
		return nil, err
	}
	t := &target{branch: b.Name, head: b.Head}
	if t.namespaces, err = h.namespacesAt(ctx, t.at()); err != nil {
		return nil, err
	}
	return t, nil
}

// namespacesAt returns the namespaces at ref with their properties (none
// without a Store).
func (h *Handler) namespacesAt(ctx context.Context, ref catalog.Ref) (map[catalog.Namespace]catalog.NamespaceEntry, error) {
	if h.opts.Store == nil {
		list, err := h.opts.Catalog.ListNamespaces(ctx, ref)
		if err != nil {
			return nil, refError(err)
		}
		out := make(map[catalog.Namespace]catalog.NamespaceEntry, len(list))
		for _, ns := range list {
			out[ns] = catalog.NamespaceEntry{}
		}
		return out, nil
	}
	c, err := h.opts.Catalog.Resolve(ctx, ref)
	if err != nil {
		return nil, refError(err)
	}
	var out map[catalog.Namespace]catalog.NamespaceEntry
	err = h.opts.Store.View(ctx, func(tx catalog.Tx) error {
		t, err := tx.GetTree(c.Tree)
		if err != nil {
			return err
		}
		out = t.Namespaces
		return nil
	})
	return out, err
}

// parseNamespace reads a namespace of a path or body: one level, a valid
// name.
func parseNamespace(parts []string) (catalog.Namespace, error) {
	if len(parts) != 1 {
		return "", badRequest("namespace %q has %d levels; namespaces here have exactly one (like sales)",
			strings.Join(parts, "."), len(parts))
	}
	return catalog.ParseNamespace(parts[0])
}

// pathNamespace reads the namespace of a path segment (levels separated
// by 0x1F, as the spec encodes them).
func pathNamespace(seg string) (catalog.Namespace, error) {
	return parseNamespace(strings.Split(seg, "\x1f"))
}

// noNamespace is the 404 of a namespace missing at ref.
func noNamespace(ns catalog.Namespace, ref string) error {
	return notFound("NoSuchNamespaceException", "namespace %s does not exist at %s", ns, ref)
}

// noTable is the 404 of a table missing at ref.
func noTable(id catalog.TableIdent, ref string) error {
	return notFound("NoSuchTableException", "table %s does not exist at %s", id, ref)
}

// notFoundAt says what is missing when a read at c's ref found nothing:
// the ref, the namespace, or (when id is not zero) the table.
func (h *Handler) notFoundAt(c *call, ns catalog.Namespace, id catalog.TableIdent, err error) error {
	if !errdefs.Is(err, errdefs.ErrNotFound) {
		return err
	}
	nss, nerr := h.namespacesAt(c.r.Context(), c.ref)
	if nerr != nil {
		return nerr
	}
	if _, ok := nss[ns]; !ok {
		return noNamespace(ns, c.refStr)
	}
	if id != (catalog.TableIdent{}) {
		return noTable(id, c.refStr)
	}
	return notFound("NotFoundException", "%s", err.Error())
}

// commitOptions are the options of a commit a call makes.
func (h *Handler) commitOptions(c *call, format string, args ...any) catalog.CommitOptions {
	return catalog.CommitOptions{Author: h.author(c), Message: "iceberg rest: " + fmt.Sprintf(format, args...),
		Properties: map[string]string{catalog.PropOperation: "iceberg-rest"}}
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}
