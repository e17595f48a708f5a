package restcatalog

import (
	"maps"
	"net/http"
	"slices"
	"sort"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

type namespaceBody struct {
	Namespace  []string          `json:"namespace"`
	Properties map[string]string `json:"properties"`
}

// listNamespaces answers GET namespaces[?parent=].
func (h *Handler) listNamespaces(c *call) error {
	nss, err := h.namespacesAt(c.r.Context(), c.ref)
	if err != nil {
		return err
	}
	out := [][]string{}
	if parent := c.r.URL.Query().Get("parent"); parent != "" {
		// One level: a namespace has no children.
		ns, err := pathNamespace(parent)
		if err != nil {
			return err
		}
		if _, ok := nss[ns]; !ok {
			return noNamespace(ns, c.refStr)
		}
	} else {
		for _, ns := range slices.Sorted(maps.Keys(nss)) {
			out = append(out, []string{string(ns)})
		}
	}
	return writeJSON(c.w, http.StatusOK, map[string]any{"namespaces": out})
}

// loadNamespace answers GET namespaces/{ns}.
func (h *Handler) loadNamespace(c *call) error {
	ns, e, err := h.namespace(c)
	if err != nil {
		return err
	}
	props := e.Properties
	if props == nil {
		props = map[string]string{}
	}
	return writeJSON(c.w, http.StatusOK, namespaceBody{Namespace: []string{string(ns)}, Properties: props})
}

// namespaceExists answers HEAD namespaces/{ns}.
func (h *Handler) namespaceExists(c *call) error {
	if _, _, err := h.namespace(c); err != nil {
		return err
	}
	return noContent(c.w)
}

// namespace returns the namespace of c's path at c's ref.
func (h *Handler) namespace(c *call) (catalog.Namespace, catalog.NamespaceEntry, error) {
	ns, err := pathNamespace(c.rest[1])
	if err != nil {
		return "", catalog.NamespaceEntry{}, err
	}
	nss, err := h.namespacesAt(c.r.Context(), c.ref)
	if err != nil {
		return "", catalog.NamespaceEntry{}, err
	}
	e, ok := nss[ns]
	if !ok {
		return "", catalog.NamespaceEntry{}, noNamespace(ns, c.refStr)
	}
	return ns, e, nil
}

// createNamespace answers POST namespaces.
func (h *Handler) createNamespace(c *call) error {
	var req namespaceBody
	if err := h.decode(c, &req); err != nil {
		return err
	}
	ns, err := parseNamespace(req.Namespace)
	if err != nil {
		return err
	}
	t, err := h.writable(c)
	if err != nil {
		return err
	}
	if _, ok := t.namespaces[ns]; ok {
		return &restError{status: http.StatusConflict, typ: "AlreadyExistsException",
			msg: "namespace " + string(ns) + " already exists on " + string(t.branch)}
	}
	e := &catalog.NamespaceEntry{}
	if len(req.Properties) > 0 {
		e.Properties = req.Properties
	}
	ch := catalog.Changes{Namespaces: map[catalog.Namespace]*catalog.NamespaceEntry{ns: e}}
	if _, err := h.opts.Catalog.CommitTables(c.r.Context(), t.branch, t.head, ch, h.commitOptions(c, "create namespace %s", ns)); err != nil {
		return err
	}
	props := req.Properties
	if props == nil {
		props = map[string]string{}
	}
	return writeJSON(c.w, http.StatusOK, namespaceBody{Namespace: []string{string(ns)}, Properties: props})
}

// dropNamespace answers DELETE namespaces/{ns}.
func (h *Handler) dropNamespace(c *call) error {
	ns, err := pathNamespace(c.rest[1])
	if err != nil {
		return err
	}
	t, err := h.writable(c)
	if err != nil {
		return err
	}
	if _, ok := t.namespaces[ns]; !ok {
		return noNamespace(ns, c.refStr)
	}
	_, err = h.opts.Catalog.DeleteNamespace(c.r.Context(), t.branch, ns, h.commitOptions(c, "drop namespace %s", ns))
	if errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		return &restError{status: http.StatusConflict, typ: "NamespaceNotEmptyException", msg: err.Error()}
	}
	if err != nil {
		return err
	}
	return noContent(c.w)
}

// updateNamespace answers POST namespaces/{ns}/properties.
func (h *Handler) updateNamespace(c *call) error {
	var req struct {
		Removals []string          `json:"removals"`
		Updates  map[string]string `json:"updates"`
	}
	if err := h.decode(c, &req); err != nil {
		return err
	}
	ns, err := pathNamespace(c.rest[1])
	if err != nil {
		return err
	}
	for _, k := range req.Removals {
		if _, ok := req.Updates[k]; ok {
			return &restError{status: http.StatusUnprocessableEntity, typ: "UnprocessableEntityException",
				msg: "property " + k + " is both updated and removed"}
		}
	}
	if h.opts.Store == nil {
		return &restError{status: http.StatusNotImplemented, typ: "UnsupportedOperationException",
			msg: "this server does not keep namespace properties"}
	}
	t, err := h.writable(c)
	if err != nil {
		return err
	}
	e, ok := t.namespaces[ns]
	if !ok {
		return noNamespace(ns, c.refStr)
	}
	props := maps.Clone(e.Properties)
	if props == nil {
		props = map[string]string{}
	}
	resp := struct {
		Updated []string `json:"updated"`
		Removed []string `json:"removed"`
		Missing []string `json:"missing,omitempty"`
	}{Updated: []string{}, Removed: []string{}}
	for _, k := range req.Removals {
		if _, ok := props[k]; ok {
			delete(props, k)
			resp.Removed = append(resp.Removed, k)
		} else {
			resp.Missing = append(resp.Missing, k)
		}
	}
	for k, v := range req.Updates {
		props[k] = v
		resp.Updated = append(resp.Updated, k)
	}
	sort.Strings(resp.Updated)
	ne := &catalog.NamespaceEntry{}
	if len(props) > 0 {
		ne.Properties = props
	}
	ch := catalog.Changes{Namespaces: map[catalog.Namespace]*catalog.NamespaceEntry{ns: ne}}
	if _, err := h.opts.Catalog.CommitTables(c.r.Context(), t.branch, t.head, ch, h.commitOptions(c, "set properties of namespace %s", ns)); err != nil {
		return err
	}
	return writeJSON(c.w, http.StatusOK, resp)
}
