package restcatalog

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Tables is what the handler needs of the Iceberg table format;
// catalog/iceberg's Format implements it. Errors are of the errdefs classes.
type Tables interface {
	// ReadMetadata returns the content of the metadata file at loc
	// (ErrNotFound if there is none).
	ReadMetadata(ctx context.Context, loc string) ([]byte, error)
	// CommitUpdates checks reqs against the table state current (nil for a
	// table the updates create), applies updates and writes the next
	// metadata file. A failing requirement is ErrConflict; updates that do
	// not apply are ErrInvalidArgument.
	CommitUpdates(ctx context.Context, id catalog.TableIdent, current *catalog.TableEntry,
		reqs []table.Requirement, updates []table.Update) (catalog.TableEntry, table.Metadata, error)
	// NewTableMetadata returns the metadata of a new table at a location
	// the format chooses, writing nothing.
	NewTableMetadata(id catalog.TableIdent, sc *iceberg.Schema, spec *iceberg.PartitionSpec,
		order *table.SortOrder, props iceberg.Properties) (table.Metadata, error)
	// CreateTable writes md as the first metadata file of a new table.
	CreateTable(ctx context.Context, id catalog.TableIdent, md table.Metadata) (catalog.TableEntry, table.Metadata, error)
	// RegisterTable returns the entry of an existing metadata file.
	RegisterTable(ctx context.Context, id catalog.TableIdent, loc string) (catalog.TableEntry, table.Metadata, error)
}

// Options configure a Handler.
type Options struct {
	// Catalog is the catalog served. Required.
	Catalog catalog.Service
	// Tables reads and writes table metadata. Required.
	Tables Tables
	// Store, if set, is the catalog's store, read for namespace
	// properties (which catalog.Service does not return); without it
	// namespaces have no properties and property updates are refused.
	Store catalog.Store
	// Auth checks the bearer key of every call; nil serves everyone as
	// an admin (a server without API keys).
	Auth flight.Authenticator
	// Mount is the path the handler is mounted at. Default "/iceberg/".
	Mount string
	// MaxBodyBytes bounds a request body (413 beyond). Default 8 MiB.
	MaxBodyBytes int64
}

// Defaults of Options.
const (
	DefaultMount        = "/iceberg/"
	DefaultMaxBodyBytes = 8 << 20
)

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
	if o.Catalog == nil || o.Tables == nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "restcatalog: Catalog and Tables are required")
	}
	if o.Mount == "" {
		o.Mount = DefaultMount
	}
	if !strings.HasPrefix(o.Mount, "/") || !strings.HasSuffix(o.Mount, "/") {
		return errdefs.New(errdefs.ErrInvalidArgument, "restcatalog: Mount %q must start and end with '/'", o.Mount)
	}
	if o.MaxBodyBytes < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "restcatalog: MaxBodyBytes is negative")
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return nil
}

// Handler serves the Iceberg REST catalog. It is safe for concurrent use.
type Handler struct {
	opts Options
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler.
func New(opts Options) (*Handler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Handler{opts: opts}, nil
}

// call is one request: its ref, the rest of its path and its caller.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	ref    catalog.Ref
	refStr string
	// rest are the path segments after the prefix, unescaped.
	rest []string
	who  flight.Principal
}

// route is one endpoint: a method and a path pattern of the segments after
// v1/{prefix} ("{}" matches any one segment).
type route struct {
	method, pattern string
	serve           func(h *Handler, c *call) error
}

// routes are the endpoints served; config lists them.
var routes = []route{
	{http.MethodGet, "namespaces", (*Handler).listNamespaces},
	{http.MethodPost, "namespaces", (*Handler).createNamespace},
	{http.MethodGet, "namespaces/{}", (*Handler).loadNamespace},
	{http.MethodHead, "namespaces/{}", (*Handler).namespaceExists},
	{http.MethodDelete, "namespaces/{}", (*Handler).dropNamespace},
	{http.MethodPost, "namespaces/{}/properties", (*Handler).updateNamespace},
	{http.MethodGet, "namespaces/{}/tables", (*Handler).listTables},
	{http.MethodPost, "namespaces/{}/tables", (*Handler).createTable},
	{http.MethodGet, "namespaces/{}/tables/{}", (*Handler).loadTable},
	{http.MethodHead, "namespaces/{}/tables/{}", (*Handler).tableExists},
	{http.MethodPost, "namespaces/{}/tables/{}", (*Handler).updateTable},
	{http.MethodDelete, "namespaces/{}/tables/{}", (*Handler).dropTable},
	{http.MethodPost, "namespaces/{}/register", (*Handler).registerTable},
	{http.MethodPost, "tables/rename", (*Handler).renameTable},
	{http.MethodPost, "transactions/commit", (*Handler).commitTransaction},
}

// Endpoints lists the endpoints served, as GET v1/config names them.
func Endpoints() []string {
	out := make([]string, 0, len(routes))
	for _, rt := range routes {
		p := "/v1/{prefix}/" + rt.pattern
		p = strings.Replace(p, "namespaces/{}", "namespaces/{namespace}", 1)
		p = strings.Replace(p, "tables/{}", "tables/{table}", 1)
		out = append(out, rt.method+" "+p)
	}
	return out
}

func (rt route) match(method string, segs []string) (pathOK, ok bool) {
	pat := strings.Split(rt.pattern, "/")
	if len(pat) != len(segs) {
		return false, false
	}
	for i, p := range pat {
		if p != "{}" && p != segs[i] {
			return false, false
		}
	}
	return true, rt.method == method
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{w: w, r: r}
	// A request that reaches a bug gets a 500 in the Iceberg error shape
	// (net/http alone would drop the connection), and the stack goes to
	// the server's log.
	defer func() {
		p := recover()
		if p == nil || p == http.ErrAbortHandler {
			if p != nil {
				panic(p)
			}
			return
		}
		log.Printf("iceberg REST: %s %s panicked: %v\n%s", r.Method, r.URL.Path, p, debug.Stack())
		writeError(w, r, errdefs.New(errdefs.ErrInternal, "%s %s failed on a bug of the server (it is logged): %v", r.Method, r.URL.Path, p))
	}()
	if err := h.serve(c); err != nil {
		writeError(w, r, err)
	}
}

func (h *Handler) serve(c *call) error {
	segs, err := h.segments(c.r)
	if err != nil {
		return err
	}
	// <ref>/v1/config, <ref>/v1/<prefix>/..., or v1/<prefix>/...
	var prefixed []string
	switch {
	case len(segs) == 3 && segs[1] == "v1" && segs[2] == "config":
		if c.r.Method != http.MethodGet {
			return methodNotAllowed(c.r)
		}
		if err := h.authenticate(c); err != nil {
			return err
		}
		return h.config(c, segs[0])
	case len(segs) >= 2 && segs[0] == "v1" && segs[1] == "config":
		return badRequest("the catalog URI names a ref: use %s<ref> (for example %smain) as the URI", h.opts.Mount, h.opts.Mount)
	case len(segs) >= 3 && segs[1] == "v1":
		prefixed = segs[2:]
	case len(segs) >= 2 && segs[0] == "v1":
		prefixed = segs[1:]
	default:
		return notFound("NoSuchEndpointException", "no such endpoint %s %s: the catalog URI is %s<ref>", c.r.Method, c.r.URL.Path, h.opts.Mount)
	}
	if err := h.authenticate(c); err != nil {
		return err
	}
	if c.ref, err = catalog.ParseRef(prefixed[0]); err != nil {
		return err
	}
	c.refStr, c.rest = prefixed[0], prefixed[1:]
	pathOK := false
	for _, rt := range routes {
		p, ok := rt.match(c.r.Method, c.rest)
		if ok {
			return rt.serve(h, c)
		}
		pathOK = pathOK || p
	}
	if pathOK {
		return methodNotAllowed(c.r)
	}
	return notFound("NoSuchEndpointException", "no such endpoint %s %s", c.r.Method, c.r.URL.Path)
}

// segments splits the path under the mount point into unescaped segments.
func (h *Handler) segments(r *http.Request) ([]string, error) {
	p, ok := strings.CutPrefix(r.URL.EscapedPath(), h.opts.Mount)
	if !ok {
		return nil, notFound("NoSuchEndpointException", "no such endpoint %s", r.URL.Path)
	}
	raw := strings.Split(strings.TrimSuffix(p, "/"), "/")
	out := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, badRequest("malformed path segment %q: %v", s, err)
		}
		out[i] = u
	}
	return out, nil
}

// authenticate sets the caller of c from its bearer key.
func (h *Handler) authenticate(c *call) error {
	c.who = flight.Principal{Role: flight.RoleAdmin}
	if h.opts.Auth == nil {
		return nil
	}
	key := ""
	if v := c.r.Header.Get("Authorization"); v != "" {
		scheme, k, _ := strings.Cut(v, " ")
		if strings.EqualFold(scheme, "Bearer") {
			key = strings.TrimSpace(k)
		}
	}
	p, err := h.opts.Auth.Authenticate(c.r.Context(), key)
	if err != nil {
		return err
	}
	c.who = p
	return nil
}

// author is the author of the commits of c: the key's user ("" without
// keys: the catalog's default author).
func (h *Handler) author(c *call) string {
	if h.opts.Auth == nil {
		return ""
	}
	return c.who.User
}

// config answers GET v1/config.
func (h *Handler) config(c *call, refStr string) error {
	ref, err := catalog.ParseRef(refStr)
	if err != nil {
		return err
	}
	if _, err := h.opts.Catalog.Resolve(c.r.Context(), ref); err != nil {
		return refError(err)
	}
	return writeJSON(c.w, http.StatusOK, map[string]any{
		"defaults":  map[string]string{"prefix": refStr},
		"overrides": map[string]string{},
		"endpoints": Endpoints(),
	})
}

// decode reads the JSON body of c into v, within MaxBodyBytes.
func (h *Handler) decode(c *call, v any) error {
	body := http.MaxBytesReader(c.w, c.r.Body, h.opts.MaxBodyBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &restError{status: http.StatusRequestEntityTooLarge, typ: "RequestEntityTooLargeException",
				msg: "the request body is larger than " + sizeText(h.opts.MaxBodyBytes) + "; send smaller commits"}
		}
		return badRequest("malformed request body: %v", err)
	}
	if dec.More() {
		return badRequest("malformed request body: more than one JSON value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A failed write leaves nothing more to tell the client.
	w.Write(b) //nolint:errcheck
	return nil
}
