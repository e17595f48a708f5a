package flight

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// PlacedQuery is a query the control plane planned and placed on a
// worker: everything the worker needs to run it in its sandboxed DuckDB
// without a catalog of its own. It travels in the DoGet ticket of the
// FlightInfo endpoint located at the worker, signed with the fleet's
// ticket key (SignPlaced), so the worker runs only what its control plane
// planned: catalog tables at the files the plan resolved, never a path a
// client chose.
type PlacedQuery struct {
	// ID names the placement in logs on both sides.
	ID  string `json:"id"`
	SQL string `json:"sql"`
	// Namespace qualifies unqualified table names.
	Namespace string `json:"namespace"`
	// Warehouse is the control plane's warehouse URI; the worker reads the
	// files of Tables from it.
	Warehouse string `json:"warehouse"`
	// Tables are the resolved scans.
	Tables []PlacedTable `json:"tables"`
	// Worker and Lease are the worker the query was placed on and its
	// lease then: another worker, or the same after it registered again,
	// refuses the ticket.
	Worker string `json:"worker"`
	Lease  string `json:"lease"`
	// User is who asked (for the worker's logs).
	User string `json:"user,omitempty"`
	// Expires is when the ticket stops being honoured (the control
	// plane's clock: keep clocks within a few seconds).
	Expires time.Time `json:"expires"`
}

// PlacedTable is the scan of one table of a placed query.
type PlacedTable struct {
	Namespace     string           `json:"namespace"`
	Name          string           `json:"name"`
	Schema        []catalog.Column `json:"schema"`
	SchemaEvolved bool             `json:"schema_evolved,omitempty"`
	// Columns are the columns the query reads (nil: all).
	Columns []string `json:"columns,omitempty"`
	// Files are the kept data files: warehouse URIs for a remote
	// warehouse, local paths for a file:// one.
	Files []string `json:"files"`
}

// placedTicket is the part of a Ticket that carries a placed query: its
// JSON and the HMAC-SHA256 of that JSON under the ticket key, in hex.
type placedTicket struct {
	Placed json.RawMessage `json:"placed,omitempty"`
	Sig    string          `json:"sig,omitempty"`
}

// SignPlaced encodes p as a signed ticket.
func SignPlaced(key []byte, p PlacedQuery) ([]byte, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return json.Marshal(placedTicket{Placed: body, Sig: hex.EncodeToString(mac(key, body))})
}

// VerifyPlaced checks a placed ticket's signature under key and its
// expiry at now, and decodes it. A bad signature is
// errdefs.ErrPermissionDenied, an expired ticket errdefs.ErrNotFound.
func VerifyPlaced(key []byte, body json.RawMessage, sig string, now time.Time) (PlacedQuery, error) {
	var p PlacedQuery
	want, err := hex.DecodeString(sig)
	if err != nil || len(key) == 0 || !hmac.Equal(want, mac(key, body)) {
		return p, errdefs.WithHint(errdefs.ErrPermissionDenied, "ask the control plane for the query (GetFlightInfo) and use the ticket it answers",
			"the ticket is not signed by this worker's control plane")
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, errdefs.New(errdefs.ErrInvalidArgument, "malformed placed query in the ticket: %v", err)
	}
	if now.After(p.Expires) {
		return p, errdefs.WithHint(errdefs.ErrNotFound, "run the query again (GetFlightInfo, then DoGet sooner)",
			"placed query %s expired at %s", p.ID, p.Expires.UTC().Format(time.RFC3339))
	}
	return p, nil
}

func mac(key, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(body)
	return h.Sum(nil)
}
