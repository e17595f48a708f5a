package restcatalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
)

// do sends a request and returns its status and Iceberg error body.
func do(t *testing.T, method, url, key, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	if resp.StatusCode >= 400 && method != http.MethodHead {
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatalf("%s %s: %d without an Iceberg error body: %v", method, url, resp.StatusCode, err)
		}
		if e.Error.Code != resp.StatusCode {
			t.Fatalf("%s %s: body code %d, status %d", method, url, e.Error.Code, resp.StatusCode)
		}
	}
	return resp.StatusCode, e.Error.Type, e.Error.Message
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, keyAuth{"k-alice": {User: "alice", Role: flight.RoleWriter}, "k-bob": {User: "bob", Role: flight.RoleWriter}})
	ctx := context.Background()
	e, _, err := h.svc.TableEntry(ctx, catalog.Ref{Name: "alice.dev"}, catalog.TableIdent{Namespace: "sales", Name: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	u := h.uri("alice.dev") + "/v1/alice.dev"
	tbl := u + "/namespaces/sales/tables/orders"
	assertSnap := `{"requirements":[{"type":"assert-ref-snapshot-id","ref":"main","snapshot-id":12345}],"updates":[]}`
	cases := []struct {
		name, method, url, key, body string
		status                       int
		typ, says                    string
	}{
		{"no key", "GET", u + "/namespaces", "", "", 401, "NotAuthorizedException", "needs an API key"},
		{"unknown key", "GET", u + "/namespaces", "k-nope", "", 401, "NotAuthorizedException", "unknown"},
		{"config without a key", "GET", h.uri("main") + "/v1/config", "", "", 401, "NotAuthorizedException", ""},
		{"malformed JSON", "POST", tbl, "k-alice", `{"requirements": [`, 400, "BadRequestException", "malformed"},
		{"unknown update", "POST", tbl, "k-alice", `{"requirements":[],"updates":[{"action":"paint-it-blue"}]}`, 400, "BadRequestException", "paint-it-blue"},
		{"unknown requirement", "POST", tbl, "k-alice", `{"requirements":[{"type":"assert-mood"}],"updates":[]}`, 400, "BadRequestException", "assert-mood"},
		{"failing requirement", "POST", tbl, "k-alice", assertSnap, 409, "CommitFailedException", "requirement failed"},
		{"oversized body", "POST", tbl, "k-alice", `{"updates":[` + strings.Repeat(`{"action":"set-properties","updates":{"a":"b"}},`, 4000) + `{}]}`, 413, "RequestEntityTooLargeException", "larger than"},
		{"unknown ref", "GET", h.uri("nobody.x") + "/v1/nobody.x/namespaces", "k-alice", "", 404, "NoSuchReferenceException", "nobody.x"},
		{"unknown ref config", "GET", h.uri("nobody.x") + "/v1/config", "k-alice", "", 404, "NoSuchReferenceException", ""},
		{"bad ref", "GET", h.uri("a..b") + "/v1/a..b/namespaces", "k-alice", "", 400, "BadRequestException", "invalid ref"},
		{"unknown namespace", "GET", u + "/namespaces/nope", "k-alice", "", 404, "NoSuchNamespaceException", "nope"},
		{"unknown namespace tables", "GET", u + "/namespaces/nope/tables", "k-alice", "", 404, "NoSuchNamespaceException", "nope"},
		{"unknown table", "GET", u + "/namespaces/sales/tables/nope", "k-alice", "", 404, "NoSuchTableException", "sales.nope"},
		{"table in unknown namespace", "GET", u + "/namespaces/nope/tables/orders", "k-alice", "", 404, "NoSuchNamespaceException", ""},
		{"nested namespace", "GET", u + "/namespaces/a%1Fb", "k-alice", "", 400, "BadRequestException", "one"},
		// Spark loads sales.orders.snapshots as a table first, and reads the
		// metadata table only after NoSuchTableException.
		{"table in a nested namespace", "GET", u + "/namespaces/sales%1Forders/tables/snapshots", "k-alice", "", 404, "NoSuchTableException", "one level"},
		{"table in a nested namespace exists", "HEAD", u + "/namespaces/sales%1Forders/tables/snapshots", "k-alice", "", 404, "", ""},
		{"snapshots mode", "GET", tbl + "?snapshots=some", "k-alice", "", 400, "BadRequestException", "all or refs"},
		{"unknown endpoint", "GET", u + "/views", "k-alice", "", 404, "NoSuchEndpointException", ""},
		{"wrong method", "PUT", tbl, "k-alice", "", 405, "MethodNotAllowedException", ""},
		{"write to main", "POST", h.uri("main") + "/v1/main/namespaces", "k-alice", `{"namespace":["x"]}`, 403, "ForbiddenException", "only by merge"},
		{"write to a tag", "POST", h.uri("v1") + "/v1/v1/namespaces/sales/tables/orders", "k-alice", `{"requirements":[],"updates":[]}`, 403, "ForbiddenException", "tags are read-only"},
		{"write to a commit", "DELETE", h.uri("@0123456789ab") + "/v1/@0123456789ab/namespaces/sales/tables/orders", "k-alice", "", 403, "ForbiddenException", "commits are read-only"},
		{"write another's branch", "DELETE", tbl, "k-bob", "", 403, "ForbiddenException", "bob"},
		{"location given", "POST", u + "/namespaces/sales/tables", "k-alice", `{"name":"t","location":"/tmp/x","schema":{"type":"struct","schema-id":0,"fields":[]}}`, 400, "BadRequestException", "location"},
		{"table exists", "POST", u + "/namespaces/sales/tables", "k-alice", `{"name":"orders","schema":{"type":"struct","schema-id":0,"fields":[]}}`, 409, "AlreadyExistsException", "already exists"},
		{"register outside the warehouse", "POST", u + "/namespaces/sales/register", "k-alice", `{"name":"r","metadata-location":"/etc/passwd"}`, 400, "BadRequestException", "warehouse"},
		{"drop a missing table", "DELETE", u + "/namespaces/sales/tables/nope", "k-alice", "", 404, "NoSuchTableException", ""},
		{"empty transaction", "POST", u + "/transactions/commit", "k-alice", `{"table-changes":[]}`, 400, "BadRequestException", "no table-changes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, typ, msg := do(t, tc.method, tc.url, tc.key, tc.body)
			if st != tc.status || typ != tc.typ || !strings.Contains(msg, tc.says) {
				t.Fatalf("got %d %s %q, want %d %s saying %q", st, typ, msg, tc.status, tc.typ, tc.says)
			}
		})
	}
	// Nothing above changed the branch.
	after, _, err := h.svc.TableEntry(ctx, catalog.Ref{Name: "alice.dev"}, catalog.TableIdent{Namespace: "sales", Name: "orders"})
	if err != nil || after != e {
		t.Fatalf("the table changed: %+v %v", after, err)
	}
	if st, _, _ := do(t, "HEAD", u+"/namespaces/sales/tables/nope", "k-alice", ""); st != 404 {
		t.Fatalf("HEAD of a missing table: %d", st)
	}
}

// TestConcurrentCommitters runs rounds of 8 clients appending to one
// table from the same state: exactly one wins each round, the others get
// CommitFailed, and no winner's rows are lost.
func TestConcurrentCommitters(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	const clients, rounds = 8, 3
	cats := make([]*rest.Catalog, clients)
	for i := range cats {
		cats[i] = h.client(t, "alice.dev")
	}
	for round := 0; round < rounds; round++ {
		tbls := make([]*table.Table, clients)
		for i, cat := range cats {
			var err error
			if tbls[i], err = cat.LoadTable(ctx, orders); err != nil {
				t.Fatal(err)
			}
		}
		var (
			wg         sync.WaitGroup
			start      = make(chan struct{})
			errs       = make([]error, clients)
			wins, lost int
		)
		for i := range cats {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = tbls[i].AppendTable(ctx, rows(int64(100*round+i)), 10, nil)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, rest.ErrCommitFailed):
				lost++
			default:
				t.Fatalf("round %d client %d: %v", round, i, err)
			}
		}
		if wins != 1 || lost != clients-1 {
			t.Fatalf("round %d: %d won, %d failed", round, wins, lost)
		}
	}
	tbl, err := cats[0].LoadTable(ctx, orders)
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	if at.NumRows() != 3+rounds {
		t.Fatalf("%d rows, want %d", at.NumRows(), 3+rounds)
	}
}
