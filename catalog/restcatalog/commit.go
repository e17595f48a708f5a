package restcatalog

import (
	"strings"

	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// tableChange is a CommitTableRequest of the spec: requirements checked
// against the table state the commit reads, and updates applied to it.
type tableChange struct {
	Identifier   *identifier        `json:"identifier,omitempty"`
	Requirements table.Requirements `json:"requirements"`
	Updates      table.Updates      `json:"updates"`
}

// staged is a table change applied to its table and written as a new
// metadata file, not yet committed.
type staged struct {
	id    catalog.TableIdent
	entry catalog.TableEntry
	md    table.Metadata
}

// apply reads id's state at t's head, checks ch's requirements against it
// and writes the updated state.
func (h *Handler) apply(c *call, t *target, id catalog.TableIdent, ch tableChange) (*staged, error) {
	if _, ok := t.namespaces[id.Namespace]; !ok {
		return nil, noNamespace(id.Namespace, c.refStr)
	}
	var current *catalog.TableEntry
	e, _, err := h.opts.Catalog.TableEntry(c.r.Context(), t.at(), id)
	switch {
	case err == nil:
		current = &e
	case errdefs.Is(err, errdefs.ErrNotFound):
		if !creates(ch.Requirements) {
			return nil, noTable(id, c.refStr)
		}
	default:
		return nil, err
	}
	ne, md, err := h.opts.Tables.CommitUpdates(c.r.Context(), id, current, ch.Requirements, ch.Updates)
	if err != nil {
		return nil, err
	}
	return &staged{id: id, entry: ne, md: md}, nil
}

// creates reports whether reqs hold assert-create: the commit creates the
// table (after a staged create).
func creates(reqs table.Requirements) bool {
	for _, r := range reqs {
		if r.GetType() == "assert-create" {
			return true
		}
	}
	return false
}

// updateTable answers POST namespaces/{ns}/tables/{t}: one table commit,
// landing as one catalog commit on the branch.
func (h *Handler) updateTable(c *call) error {
	var req tableChange
	if err := h.decode(c, &req); err != nil {
		return err
	}
	id, err := pathTable(c)
	if err != nil {
		return err
	}
	if req.Identifier != nil {
		bid, err := req.Identifier.ident()
		if err != nil {
			return err
		}
		if bid != id {
			return badRequest("the body names table %s, the path %s", bid, id)
		}
	}
	t, err := h.writable(c)
	if err != nil {
		return err
	}
	s, err := h.apply(c, t, id, req)
	if err != nil {
		return err
	}
	return h.commitEntry(c, t, id, s.entry, s.md, "commit table %s", id)
}

// commitTransaction answers POST transactions/commit: the changes of many
// tables in one catalog commit. Any failing requirement fails the whole
// request and nothing is applied.
func (h *Handler) commitTransaction(c *call) error {
	var req struct {
		TableChanges []tableChange `json:"table-changes"`
	}
	if err := h.decode(c, &req); err != nil {
		return err
	}
	if len(req.TableChanges) == 0 {
		return badRequest("the transaction has no table-changes")
	}
	ids := make([]catalog.TableIdent, len(req.TableChanges))
	seen := map[catalog.TableIdent]bool{}
	for i, ch := range req.TableChanges {
		if ch.Identifier == nil {
			return badRequest("table change %d has no identifier", i+1)
		}
		id, err := ch.Identifier.ident()
		if err != nil {
			return err
		}
		if seen[id] {
			return badRequest("table %s appears twice in the transaction; send one change per table", id)
		}
		seen[id], ids[i] = true, id
	}
	t, err := h.writable(c)
	if err != nil {
		return err
	}
	changes := catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{}}
	for i, ch := range req.TableChanges {
		s, err := h.apply(c, t, ids[i], ch)
		if err != nil {
			return err
		}
		changes.Tables[s.id] = &s.entry
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id.String()
	}
	_, err = h.opts.Catalog.CommitTables(c.r.Context(), t.branch, t.head, changes,
		h.commitOptions(c, "commit transaction on %s", strings.Join(names, ", ")))
	if err != nil {
		return err
	}
	return noContent(c.w)
}
