package restcatalog

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// identifier is a table identifier of a request body.
type identifier struct {
	Namespace []string `json:"namespace"`
	Name      string   `json:"name"`
}

// ident validates a body's table identifier.
func (i identifier) ident() (catalog.TableIdent, error) {
	ns, err := parseNamespace(i.Namespace)
	if err != nil {
		return catalog.TableIdent{}, err
	}
	return catalog.ParseTableIdent(i.Name, ns)
}

// tableResult is the LoadTableResult (and CommitTableResponse) of the spec.
type tableResult struct {
	MetadataLocation string            `json:"metadata-location,omitempty"`
	Metadata         json.RawMessage   `json:"metadata"`
	Config           map[string]string `json:"config,omitempty"`
}

// result is the tableResult of a metadata file written or loaded.
func result(loc string, md table.Metadata) (tableResult, error) {
	b, err := json.Marshal(md)
	if err != nil {
		return tableResult{}, err
	}
	return tableResult{MetadataLocation: loc, Metadata: b, Config: map[string]string{}}, nil
}

// pathTable reads the table of c's path: namespaces/{ns}/tables/{t}.
func pathTable(c *call) (catalog.TableIdent, error) {
	ns, err := pathNamespace(c.rest[1])
	if err != nil {
		return catalog.TableIdent{}, err
	}
	return catalog.ParseTableIdent(c.rest[3], ns)
}

// listTables answers GET namespaces/{ns}/tables.
func (h *Handler) listTables(c *call) error {
	ns, err := pathNamespace(c.rest[1])
	if err != nil {
		return err
	}
	list, err := h.opts.Catalog.ListTables(c.r.Context(), c.ref, ns)
	if err != nil {
		return h.notFoundAt(c, ns, catalog.TableIdent{}, err)
	}
	if len(list) == 0 {
		// An empty list is also what a missing namespace gives.
		if _, _, err := h.namespace(c); err != nil {
			return err
		}
	}
	ids := make([]identifier, 0, len(list))
	for _, t := range list {
		ids = append(ids, identifier{Namespace: []string{string(t.Namespace)}, Name: t.Name})
	}
	return writeJSON(c.w, http.StatusOK, map[string]any{"identifiers": ids})
}

// entry returns the catalog entry of c's table at c's ref. A namespace of
// several levels is a table that does not exist (404 NoSuchTableException,
// not 400): Iceberg's Java client loads ns.t.snapshots as table snapshots of
// namespace ns.t first, and falls back to the metadata table only on
// NoSuchTableException.
func (h *Handler) entry(c *call) (catalog.TableIdent, catalog.TableEntry, error) {
	if levels := strings.Split(c.rest[1], "\x1f"); len(levels) > 1 {
		return catalog.TableIdent{}, catalog.TableEntry{}, notFound("NoSuchTableException",
			"table %s.%s does not exist at %s: namespaces here have one level", strings.Join(levels, "."), c.rest[3], c.refStr)
	}
	id, err := pathTable(c)
	if err != nil {
		return id, catalog.TableEntry{}, err
	}
	e, _, err := h.opts.Catalog.TableEntry(c.r.Context(), c.ref, id)
	if err != nil {
		return id, e, h.notFoundAt(c, id.Namespace, id, err)
	}
	return id, e, nil
}

// loadTable answers GET namespaces/{ns}/tables/{t}[?snapshots=all|refs]:
// the table's metadata file at the ref.
func (h *Handler) loadTable(c *call) error {
	mode := c.r.URL.Query().Get("snapshots")
	if mode != "" && mode != "all" && mode != "refs" {
		return badRequest("snapshots=%q: use all or refs", mode)
	}
	_, e, err := h.entry(c)
	if err != nil {
		return err
	}
	b, err := h.opts.Tables.ReadMetadata(c.r.Context(), e.MetadataLocation)
	if err != nil {
		return err
	}
	if mode == "refs" {
		if b, err = refSnapshots(b); err != nil {
			return err
		}
	}
	return writeJSON(c.w, http.StatusOK, tableResult{MetadataLocation: e.MetadataLocation, Metadata: b, Config: map[string]string{}})
}

// refSnapshots keeps, of the snapshots of metadata JSON, those a ref
// (branch or tag of the table) points at.
func refSnapshots(b []byte) ([]byte, error) {
	var md map[string]json.RawMessage
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, errdefs.New(errdefs.ErrDataLoss, "table metadata is not JSON: %v", err)
	}
	var refs map[string]struct {
		SnapshotID int64 `json:"snapshot-id"`
	}
	var snaps []json.RawMessage
	if err := unmarshalField(md, "refs", &refs); err != nil {
		return nil, err
	}
	if err := unmarshalField(md, "snapshots", &snaps); err != nil {
		return nil, err
	}
	keep := map[int64]bool{}
	for _, r := range refs {
		keep[r.SnapshotID] = true
	}
	kept := []json.RawMessage{}
	for _, s := range snaps {
		var id struct {
			SnapshotID int64 `json:"snapshot-id"`
		}
		if err := json.Unmarshal(s, &id); err != nil {
			return nil, errdefs.New(errdefs.ErrDataLoss, "table metadata has a malformed snapshot: %v", err)
		}
		if keep[id.SnapshotID] {
			kept = append(kept, s)
		}
	}
	if md["snapshots"] != nil {
		out, err := json.Marshal(kept)
		if err != nil {
			return nil, err
		}
		md["snapshots"] = out
	}
	return json.Marshal(md)
}

func unmarshalField(md map[string]json.RawMessage, key string, v any) error {
	raw, ok := md[key]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errdefs.New(errdefs.ErrDataLoss, "table metadata has a malformed %s: %v", key, err)
	}
	return nil
}

// tableExists answers HEAD namespaces/{ns}/tables/{t}.
func (h *Handler) tableExists(c *call) error {
	if _, _, err := h.entry(c); err != nil {
		return err
	}
	return noContent(c.w)
}

// createTable answers POST namespaces/{ns}/tables: a new table in one
// commit, or (stage-create) its metadata without any.
func (h *Handler) createTable(c *call) error {
	var req struct {
		Name        string                        `json:"name"`
		Location    string                        `json:"location"`
		Schema      *iceberg.Schema               `json:"schema"`
		Spec        *iceberg.UnboundPartitionSpec `json:"partition-spec"`
		Order       *table.UnboundSortOrder       `json:"write-order"`
		StageCreate bool                          `json:"stage-create"`
		Properties  iceberg.Properties            `json:"properties"`
	}
	if err := h.decode(c, &req); err != nil {
		return err
	}
	ns, err := pathNamespace(c.rest[1])
	if err != nil {
		return err
	}
	id, err := catalog.ParseTableIdent(req.Name, ns)
	if err != nil {
		return err
	}
	if req.Location != "" {
		return badRequest("table %s: leave the location out: the server chooses it in the warehouse", id)
	}
	if req.Schema == nil {
		return badRequest("table %s: the request has no schema", id)
	}
	t, err := h.writable(c)
	if err != nil {
		return err
	}
	if err := h.absent(c, t, id); err != nil {
		return err
	}
	var spec *iceberg.PartitionSpec
	if req.Spec != nil {
		spec = &req.Spec.PartitionSpec
	}
	var order *table.SortOrder
	if req.Order != nil {
		order = &req.Order.SortOrder
	}
	md, err := h.opts.Tables.NewTableMetadata(id, req.Schema, spec, order, req.Properties)
	if err != nil {
		return err
	}
	if req.StageCreate {
		res, err := result("", md)
		if err != nil {
			return err
		}
		return writeJSON(c.w, http.StatusOK, res)
	}
	e, md, err := h.opts.Tables.CreateTable(c.r.Context(), id, md)
	if err != nil {
		return err
	}
	return h.commitEntry(c, t, id, e, md, "create table %s", id)
}

// absent fails unless t's namespace of id exists and id does not.
func (h *Handler) absent(c *call, t *target, id catalog.TableIdent) error {
	if _, ok := t.namespaces[id.Namespace]; !ok {
		return noNamespace(id.Namespace, c.refStr)
	}
	_, _, err := h.opts.Catalog.TableEntry(c.r.Context(), t.at(), id)
	switch {
	case err == nil:
		return &restError{status: http.StatusConflict, typ: "AlreadyExistsException",
			msg: "table " + id.String() + " already exists on " + string(t.branch)}
	case errdefs.Is(err, errdefs.ErrNotFound):
		return nil
	}
	return err
}

// commitEntry commits one table entry on t and answers with its metadata.
func (h *Handler) commitEntry(c *call, t *target, id catalog.TableIdent, e catalog.TableEntry, md table.Metadata,
	format string, args ...any) error {
	ch := catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{id: &e}}
	if _, err := h.opts.Catalog.CommitTables(c.r.Context(), t.branch, t.head, ch, h.commitOptions(c, format, args...)); err != nil {
		return err
	}
	res, err := result(e.MetadataLocation, md)
	if err != nil {
		return err
	}
	return writeJSON(c.w, http.StatusOK, res)
}

// dropTable answers DELETE namespaces/{ns}/tables/{t}. Files stay (other
// refs may hold the table) until the garbage collector finds them unused,
// whatever purgeRequested says.
func (h *Handler) dropTable(c *call) error {
	id, err := pathTable(c)
	if err != nil {
		return err
	}
	t, err := h.writable(c)
	if err != nil {
		return err
	}
	if _, ok := t.namespaces[id.Namespace]; !ok {
		return noNamespace(id.Namespace, c.refStr)
	}
	_, err = h.opts.Catalog.DeleteTable(c.r.Context(), t.branch, id, h.commitOptions(c, "drop table %s", id))
	if errdefs.Is(err, errdefs.ErrNotFound) {
		return noTable(id, c.refStr)
	}
	if err != nil {
		return err
	}
	return noContent(c.w)
}

// renameTable answers POST tables/rename: one commit that removes the
// source and adds the destination with the same state.
func (h *Handler) renameTable(c *call) error {
	var req struct {
		Source      identifier `json:"source"`
		Destination identifier `json:"destination"`
	}
	if err := h.decode(c, &req); err != nil {
		return err
	}
	from, err := req.Source.ident()
	if err != nil {
		return err
	}
	to, err := req.Destination.ident()
	if err != nil {
		return err
	}
	t, err := h.writable(c)
	if err != nil {
		return err
	}
	if _, ok := t.namespaces[from.Namespace]; !ok {
		return noNamespace(from.Namespace, c.refStr)
	}
	e, _, err := h.opts.Catalog.TableEntry(c.r.Context(), t.at(), from)
	if errdefs.Is(err, errdefs.ErrNotFound) {
		return noTable(from, c.refStr)
	}
	if err != nil {
		return err
	}
	if from == to {
		return noContent(c.w)
	}
	if err := h.absent(c, t, to); err != nil {
		return err
	}
	ch := catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{from: nil, to: &e}}
	if _, err := h.opts.Catalog.CommitTables(c.r.Context(), t.branch, t.head, ch, h.commitOptions(c, "rename table %s to %s", from, to)); err != nil {
		return err
	}
	return noContent(c.w)
}

// registerTable answers POST namespaces/{ns}/register: a table whose
// state is an existing metadata file in the warehouse.
func (h *Handler) registerTable(c *call) error {
	var req struct {
		Name             string `json:"name"`
		MetadataLocation string `json:"metadata-location"`
		Overwrite        bool   `json:"overwrite"`
	}
	if err := h.decode(c, &req); err != nil {
		return err
	}
	ns, err := pathNamespace(c.rest[1])
	if err != nil {
		return err
	}
	id, err := catalog.ParseTableIdent(req.Name, ns)
	if err != nil {
		return err
	}
	if req.MetadataLocation == "" {
		return badRequest("table %s: give the metadata-location to register", id)
	}
	t, err := h.writable(c)
	if err != nil {
		return err
	}
	if !req.Overwrite {
		if err := h.absent(c, t, id); err != nil {
			return err
		}
	} else if _, ok := t.namespaces[ns]; !ok {
		return noNamespace(ns, c.refStr)
	}
	e, md, err := h.opts.Tables.RegisterTable(c.r.Context(), id, req.MetadataLocation)
	if err != nil {
		return err
	}
	return h.commitEntry(c, t, id, e, md, "register table %s", id)
}
