package restcatalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	iceberggo "github.com/apache/iceberg-go"
	icecatalog "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/restcatalog"
)

var orders = table.Identifier{"sales", "orders"}

func TestConfigListsEndpoints(t *testing.T) {
	h := newHarness(t, nil)
	resp, err := http.Get(h.uri("alice.dev") + "/v1/config")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg struct {
		Defaults  map[string]string `json:"defaults"`
		Overrides map[string]string `json:"overrides"`
		Endpoints []string          `json:"endpoints"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || cfg.Defaults["prefix"] != "alice.dev" {
		t.Fatalf("config: %d %+v", resp.StatusCode, cfg)
	}
	if !slices.Equal(cfg.Endpoints, restcatalog.Endpoints()) || !slices.Contains(cfg.Endpoints, "POST /v1/{prefix}/transactions/commit") {
		t.Fatalf("endpoints: %v", cfg.Endpoints)
	}
}

func TestReadAtRefs(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	for _, ref := range []string{"main", "v1", "alice.dev"} {
		t.Run(ref, func(t *testing.T) {
			cat := h.client(t, ref)
			var nss []table.Identifier
			nss, err := cat.ListNamespaces(ctx, nil)
			if err != nil || !slices.ContainsFunc(nss, func(id table.Identifier) bool { return slices.Equal(id, table.Identifier{"sales"}) }) {
				t.Fatalf("namespaces: %v %v", nss, err)
			}
			var names []string
			for id, err := range cat.ListTables(ctx, table.Identifier{"sales"}) {
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, strings.Join(id, "."))
			}
			if !slices.Equal(names, []string{"sales.orders"}) {
				t.Fatalf("tables: %v", names)
			}
			tbl, err := cat.LoadTable(ctx, orders)
			if err != nil {
				t.Fatal(err)
			}
			e, _, err := h.svc.TableEntry(ctx, catalog.Ref{Name: ref}, catalog.TableIdent{Namespace: "sales", Name: "orders"})
			if err != nil {
				t.Fatal(err)
			}
			if tbl.MetadataLocation() != e.MetadataLocation {
				t.Fatalf("metadata location %s, catalog says %s", tbl.MetadataLocation(), e.MetadataLocation)
			}
			at, err := tbl.Scan(table.WithRowFilter(iceberggo.GreaterThanEqual(iceberggo.Reference("id"), int64(2)))).ToArrowTable(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer at.Release()
			if at.NumRows() != 2 {
				t.Fatalf("scan id >= 2: %d rows", at.NumRows())
			}
		})
	}
	// A commit ref reads too.
	head, err := h.svc.Resolve(ctx, catalog.Ref{Name: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.client(t, "@"+string(head.ID[:12])).LoadTable(ctx, orders); err != nil {
		t.Fatal(err)
	}
}

func TestWritesLandOnTheBranch(t *testing.T) {
	h := newHarness(t, keyAuth{"k-alice": {User: "alice", Role: "writer"}})
	ctx := context.Background()
	cat := h.client(t, "alice.dev", rest.WithOAuthToken("k-alice"))
	sc := iceberggo.NewSchema(0,
		iceberggo.NestedField{ID: 1, Name: "id", Type: iceberggo.PrimitiveTypes.Int64},
		iceberggo.NestedField{ID: 2, Name: "amount", Type: iceberggo.PrimitiveTypes.Float64})
	ident := table.Identifier{"sales", "events"}
	tbl, err := cat.CreateTable(ctx, ident, sc)
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]int64{{1, 2}, {3}} {
		if tbl, err = tbl.AppendTable(ctx, rows(ids...), 10, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := cat.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Metadata().Snapshots()); n != 2 {
		t.Fatalf("%d snapshots, want 2", n)
	}
	e, c, err := h.svc.TableEntry(ctx, catalog.Ref{Name: "alice.dev"}, catalog.TableIdent{Namespace: "sales", Name: "events"})
	if err != nil {
		t.Fatal(err)
	}
	if e.MetadataLocation != got.MetadataLocation() || c.Author != "alice" {
		t.Fatalf("catalog entry %+v by %q, client has %s", e, c.Author, got.MetadataLocation())
	}
	if _, _, err := h.svc.TableEntry(ctx, catalog.Ref{Name: "main"}, catalog.TableIdent{Namespace: "sales", Name: "events"}); err == nil {
		t.Fatal("the table is on main before any merge")
	}

	// Namespaces, rename, register, drop.
	if err := cat.CreateNamespace(ctx, table.Identifier{"ops"}, iceberggo.Properties{"owner": "alice"}); err != nil {
		t.Fatal(err)
	}
	props, err := cat.LoadNamespaceProperties(ctx, table.Identifier{"ops"})
	if err != nil || props["owner"] != "alice" {
		t.Fatalf("properties %v %v", props, err)
	}
	if _, err := cat.UpdateNamespaceProperties(ctx, table.Identifier{"ops"}, []string{"owner"}, iceberggo.Properties{"team": "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.RenameTable(ctx, ident, table.Identifier{"ops", "events"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.RegisterTable(ctx, table.Identifier{"ops", "again"}, got.MetadataLocation()); err != nil {
		t.Fatal(err)
	}
	if err := cat.DropTable(ctx, table.Identifier{"ops", "again"}); err != nil {
		t.Fatal(err)
	}
	if err := cat.DropNamespace(ctx, table.Identifier{"ops"}); !errors.Is(err, icecatalog.ErrNamespaceNotEmpty) {
		t.Fatalf("dropping a namespace with a table: %v", err)
	}
	ok, err := cat.CheckTableExists(ctx, table.Identifier{"ops", "events"})
	if err != nil || !ok {
		t.Fatalf("renamed table: %v %v", ok, err)
	}

	// Stage-create, then the commit that creates the table.
	if _, err := cat.CreateTable(ctx, table.Identifier{"sales", "staged"}, sc,
		icecatalog.WithStagedUpdates(table.NewSetPropertiesUpdate(iceberggo.Properties{"staged": "yes"}))); err != nil {
		t.Fatal(err)
	}
	staged, err := cat.LoadTable(ctx, table.Identifier{"sales", "staged"})
	if err != nil || staged.Properties()["staged"] != "yes" {
		t.Fatalf("staged table: %v", err)
	}
}

func TestTransactionIsAtomic(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	cat := h.client(t, "alice.dev")
	sc := iceberggo.NewSchema(0, iceberggo.NestedField{ID: 1, Name: "id", Type: iceberggo.PrimitiveTypes.Int64})
	other := table.Identifier{"sales", "other"}
	if _, err := cat.CreateTable(ctx, other, sc); err != nil {
		t.Fatal(err)
	}
	a, err := cat.LoadTable(ctx, orders)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cat.LoadTable(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	before, err := h.svc.Log(ctx, catalog.Ref{Name: "alice.dev"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	set := func(v string) []table.Update {
		return []table.Update{table.NewSetPropertiesUpdate(iceberggo.Properties{"owner": v})}
	}
	failing := []table.TableCommit{
		{Identifier: orders, Requirements: []table.Requirement{table.AssertTableUUID(a.Metadata().TableUUID())}, Updates: set("x")},
		{Identifier: other, Requirements: []table.Requirement{table.AssertCurrentSchemaID(99)}, Updates: set("x")},
	}
	if err := cat.CommitTransaction(ctx, failing); !errors.Is(err, rest.ErrCommitFailed) {
		t.Fatalf("transaction with a failing requirement: %v", err)
	}
	after, err := h.svc.Log(ctx, catalog.Ref{Name: "alice.dev"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("a failed transaction made %d commits", len(after)-len(before))
	}
	good := []table.TableCommit{
		{Identifier: orders, Requirements: []table.Requirement{table.AssertTableUUID(a.Metadata().TableUUID())}, Updates: set("y")},
		{Identifier: other, Requirements: []table.Requirement{table.AssertTableUUID(b.Metadata().TableUUID())}, Updates: set("y")},
	}
	if err := cat.CommitTransaction(ctx, good); err != nil {
		t.Fatal(err)
	}
	after, err = h.svc.Log(ctx, catalog.Ref{Name: "alice.dev"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)+1 {
		t.Fatalf("a transaction made %d commits, want 1", len(after)-len(before))
	}
	for _, id := range []table.Identifier{orders, other} {
		tbl, err := cat.LoadTable(ctx, id)
		if err != nil || tbl.Properties()["owner"] != "y" {
			t.Fatalf("%v after the transaction: %v %v", id, tbl.Properties(), err)
		}
	}
}
