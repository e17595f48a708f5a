package cli

import (
	"context"
	"net/http"

	"github.com/lakehouse-dev/lakehouse/catalog/restcatalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func init() { serverSetup = append(serverSetup, setupREST) }

// setupREST serves the catalog as an Iceberg REST catalog under /iceberg/
// on the HTTP listener: http://host:8181/iceberg/<ref> is a catalog URI
// for PyIceberg, DuckDB, Spark and the rest. It runs after setupKeys (first in
// serverSetup), so the keys it checks are the server's.
func setupREST(e *Env, ctx context.Context, h *serverHooks) error {
	scans, err := e.tableScans(ctx)
	if err != nil {
		return err
	}
	tables, ok := scans.(restcatalog.Tables)
	if !ok {
		return errdefs.New(errdefs.ErrInternal, "the table format of %s cannot serve the Iceberg REST catalog", e.DataDir)
	}
	store, err := e.catalogStore(ctx)
	if err != nil {
		return err
	}
	handler, err := restcatalog.New(restcatalog.Options{
		Catalog: h.opts.Catalog,
		Tables:  tables,
		Store:   store,
		Auth:    h.opts.Auth,
	})
	if err != nil {
		return err
	}
	if h.routes == nil {
		h.routes = map[string]http.Handler{}
	}
	h.routes[restcatalog.DefaultMount] = handler
	return nil
}
