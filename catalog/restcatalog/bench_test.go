package restcatalog_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
)

// BenchmarkLoadTable compares loading a table's metadata through the REST
// catalog on loopback with reading it directly (the catalog entry, then
// the metadata file), and reports the p50 latency of each (goal: REST
// within 5 ms p50):
//
//	go test -tags=duckdb_arrow ./catalog/restcatalog -run '^$' -bench LoadTable
func BenchmarkLoadTable(b *testing.B) {
	h := newHarness(b, nil)
	ctx := context.Background()
	id := catalog.TableIdent{Namespace: "sales", Name: "orders"}
	b.Run("rest-http", func(b *testing.B) {
		url := h.uri("main") + "/v1/main/namespaces/sales/tables/orders"
		cl := &http.Client{}
		measure(b, func() error {
			resp, err := cl.Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		})
	})
	b.Run("rest-iceberg-go", func(b *testing.B) {
		cat := h.client(b, "main")
		measure(b, func() error {
			_, err := cat.LoadTable(ctx, orders)
			return err
		})
	})
	b.Run("direct", func(b *testing.B) {
		measure(b, func() error {
			e, _, err := h.svc.TableEntry(ctx, catalog.Ref{Name: "main"}, id)
			if err != nil {
				return err
			}
			raw, err := h.format.ReadMetadata(ctx, e.MetadataLocation)
			if err != nil {
				return err
			}
			_, err = table.ParseMetadataBytes(raw)
			return err
		})
	})
}

// measure runs fn b.N times and reports its p50 and p99 in milliseconds.
func measure(b *testing.B, fn func() error) {
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
