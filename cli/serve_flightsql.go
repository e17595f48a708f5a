package cli

import (
	"context"

	"github.com/lakehouse-dev/lakehouse/flight/flightsql"
)

func init() { serverSetup = append(serverSetup, setupFlightSQL) }

// setupFlightSQL serves Flight SQL on the Flight listener, over the
// server's catalog and queries (docs/clients/adbc.md).
func setupFlightSQL(e *Env, ctx context.Context, h *serverHooks) error {
	srv, err := flightsql.New(flightsql.Options{Catalog: h.opts.Catalog, Queries: h.opts.Queries, Version: Version,
		Metrics: h.opts.Metrics})
	if err != nil {
		return err
	}
	h.opts.SQL = srv.Flight()
	h.onStop = append(h.onStop, srv.Close)
	return nil
}
