package restcatalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/lakehouse-dev/lakehouse/catalog"
)

// TestCombinesWithImports: a REST commit and a lakehouse import on the same
// branch combine like any two commits: an import into another table
// rebases, an import into the same table since the client loaded it is a
// conflict.
func TestCombinesWithImports(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	cat := h.client(t, "alice.dev")
	csv := filepath.Join(h.dir, "more.csv")
	if err := os.WriteFile(csv, []byte("id,amount\n9,90\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	importInto := func(name string) {
		t.Helper()
		_, err := h.svc.ImportTable(ctx, catalog.ImportRequest{Branch: "alice.dev",
			Table: catalog.TableIdent{Namespace: "sales", Name: name}, Sources: []string{csv}})
		if err != nil {
			t.Fatal(err)
		}
	}

	tbl, err := cat.LoadTable(ctx, orders)
	if err != nil {
		t.Fatal(err)
	}
	importInto("returns")
	if tbl, err = tbl.AppendTable(ctx, rows(4), 10, nil); err != nil {
		t.Fatalf("an append after an import into another table: %v", err)
	}
	importInto("orders")
	if _, err := tbl.AppendTable(ctx, rows(5), 10, nil); !errors.Is(err, rest.ErrCommitFailed) {
		t.Fatalf("an append on a state an import replaced: %v", err)
	}
	info, err := h.svc.GetTable(ctx, catalog.Ref{Name: "alice.dev"}, catalog.TableIdent{Namespace: "sales", Name: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if info.RowCount != 3+1+1 {
		t.Fatalf("%d rows, want 5 (seed, REST append, import)", info.RowCount)
	}
}

// TestSnapshotsRefs: snapshots=refs keeps only the snapshots a ref of the
// table points at; all (the default) keeps every one.
func TestSnapshotsRefs(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	tbl, err := h.client(t, "alice.dev").LoadTable(ctx, orders)
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]int64{{4}, {5}} {
		if tbl, err = tbl.AppendTable(ctx, rows(ids...), 10, nil); err != nil {
			t.Fatal(err)
		}
	}
	count := func(mode string) int {
		resp, err := http.Get(h.uri("alice.dev") + "/v1/alice.dev/namespaces/sales/tables/orders" + mode)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res struct {
			Metadata struct {
				Snapshots []json.RawMessage `json:"snapshots"`
			} `json:"metadata"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
		return len(res.Metadata.Snapshots)
	}
	if all, refs := count("?snapshots=all"), count("?snapshots=refs"); all != 3 || refs != 1 || count("") != all {
		t.Fatalf("snapshots: all %d, refs %d", all, refs)
	}
}

// FuzzRequests sends arbitrary paths and bodies: the answer is never a
// server error, and always in the Iceberg error shape when it fails.
func FuzzRequests(f *testing.F) {
	h := newHarness(f, nil)
	for _, s := range []struct{ method, path, body string }{
		{"GET", "alice.dev/v1/config", ""},
		{"GET", "alice.dev/v1/alice.dev/namespaces/sales/tables/orders", ""},
		{"POST", "alice.dev/v1/alice.dev/namespaces/sales/tables/orders", `{"requirements":[{"type":"assert-create"}],"updates":[]}`},
		{"POST", "alice.dev/v1/alice.dev/namespaces/sales/tables/orders", `{"updates":[{"action":"set-current-schema","schema-id":7}]}`},
		{"POST", "alice.dev/v1/alice.dev/namespaces/sales/tables", `{"name":"x","schema":{"type":"struct","fields":[{"id":1,"name":"a","type":"long","required":false}]},"partition-spec":{"fields":[{"source-id":9,"transform":"day","name":"d"}]}}`},
		{"POST", "alice.dev/v1/alice.dev/transactions/commit", `{"table-changes":[{"identifier":{"namespace":["sales"],"name":"orders"},"updates":[{"action":"remove-snapshots","snapshot-ids":[1]}]}]}`},
		{"POST", "alice.dev/v1/alice.dev/tables/rename", `{"source":{"namespace":["sales"],"name":"orders"},"destination":{"namespace":[],"name":""}}`},
		{"DELETE", "v1/%zz/namespaces", ""},
	} {
		f.Add(s.method, s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		switch method {
		case "GET", "HEAD", "POST", "DELETE":
		default:
			return
		}
		req, err := http.NewRequest(method, h.srv.URL+"/iceberg/"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		// A space or control character in the request line makes a
		// malformed HTTP request, which net/http answers itself (400, in
		// plain text) before any handler sees it.
		if strings.IndexFunc(req.URL.RequestURI(), func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: status %d", method, path, body, resp.StatusCode)
		}
		if resp.StatusCode >= 400 && method != "HEAD" {
			var e struct {
				Error struct{ Code int } `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error.Code != resp.StatusCode {
				t.Fatalf("%s %s %q: %d without an Iceberg error body (%v)", method, path, body, resp.StatusCode, err)
			}
		}
	})
}
