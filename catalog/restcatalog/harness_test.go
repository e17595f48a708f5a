package restcatalog_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/catalog/restcatalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/lazysubstrait"
)

// TestMain loads Substrait's function catalog, which the product never
// parses (internal/lazysubstrait): these tests read tables as an outside
// engine does, with iceberg-go's Arrow scans, whose filters need it.
func TestMain(m *testing.M) {
	if err := lazysubstrait.Load(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// harness is a real catalog on disk (bbolt and a local warehouse) served
// by the REST handler on an httptest server. Its main holds sales.orders
// (3 rows, merged from alice.base), tag v1 points at main, and branch
// alice.dev starts there.
type harness struct {
	svc    *catalog.Local
	format *iceberg.Format
	srv    *httptest.Server
	dir    string
}

func newHarness(tb testing.TB, auth flight.Authenticator) *harness {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	store, err := bolt.Open(filepath.Join(dir, "catalog.db"), bolt.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	format, err := iceberg.New(iceberg.Options{Warehouse: filepath.Join(dir, "warehouse")})
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := catalog.NewLocal(ctx, store, format, catalog.LocalOptions{Author: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Close() })
	h, err := restcatalog.New(restcatalog.Options{Catalog: svc, Tables: format, Store: store, Auth: auth, MaxBodyBytes: 64 << 10})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	hs := &harness{svc: svc, format: format, srv: srv, dir: dir}
	hs.seed(tb)
	return hs
}

func (h *harness) seed(tb testing.TB) {
	ctx := context.Background()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	csv := filepath.Join(h.dir, "orders.csv")
	must(os.WriteFile(csv, []byte("id,amount\n1,10.5\n2,20\n3,30\n"), 0o644))
	_, err := h.svc.CreateBranch(ctx, "alice.base", catalog.Ref{Name: "main"})
	must(err)
	_, err = h.svc.CreateNamespace(ctx, "alice.base", "sales", catalog.CommitOptions{})
	must(err)
	_, err = h.svc.ImportTable(ctx, catalog.ImportRequest{Branch: "alice.base",
		Table: catalog.TableIdent{Namespace: "sales", Name: "orders"}, Sources: []string{csv}})
	must(err)
	_, err = h.svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: "alice.base"}, Into: "main"})
	must(err)
	_, err = h.svc.CreateTag(ctx, "v1", catalog.Ref{Name: "main"})
	must(err)
	_, err = h.svc.CreateBranch(ctx, "alice.dev", catalog.Ref{Name: "main"})
	must(err)
}

// uri is the catalog URI of ref.
func (h *harness) uri(ref string) string { return h.srv.URL + "/iceberg/" + ref }

// client is iceberg-go's REST catalog at ref.
func (h *harness) client(tb testing.TB, ref string, opts ...rest.Option) *rest.Catalog {
	tb.Helper()
	cat, err := rest.NewCatalog(context.Background(), "lakehouse", h.uri(ref), opts...)
	if err != nil {
		tb.Fatalf("connecting to %s: %v", h.uri(ref), err)
	}
	tb.Cleanup(func() { cat.Close() })
	return cat
}

// rows is an Arrow table of (id int64, amount double) rows.
func rows(ids ...int64) arrow.Table {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, id := range ids {
		b.Field(0).(*array.Int64Builder).Append(id)
		b.Field(1).(*array.Float64Builder).Append(float64(id) * 1.5)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
}

// keyAuth is an Authenticator over a fixed set of keys.
type keyAuth map[string]flight.Principal

func (k keyAuth) Authenticate(_ context.Context, key string) (flight.Principal, error) {
	if p, ok := k[key]; ok {
		return p, nil
	}
	if key == "" {
		return flight.Principal{}, errdefs.New(errdefs.ErrUnauthenticated, "this server needs an API key, and the call carries none")
	}
	return flight.Principal{}, errdefs.New(errdefs.ErrUnauthenticated, "the API key is unknown, revoked or expired")
}
