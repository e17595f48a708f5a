package lazysubstrait_test

import (
	"sync"
	"testing"

	// Linked as in the product: its package variable asks for the default
	// collection as the process starts.
	_ "github.com/apache/iceberg-go/table/substrait"
	"github.com/substrait-io/substrait"
	"github.com/substrait-io/substrait-go/v8/extensions"

	"github.com/lakehouse-dev/lakehouse/internal/lazysubstrait"
)

// TestDeferredThenLoaded: the process started without Substrait's catalog
// (iceberg-go got the empty collection, and put its own functions in it);
// any other caller of substrait-go's loader, from any number of goroutines,
// gets that same collection with the whole catalog in it: every default
// extension file and iceberg-go's functions. Load is then a no-op.
func TestDeferredThenLoaded(t *testing.T) {
	if !lazysubstrait.Deferred() {
		t.Fatal("the default collection was not handed out empty at initialization: the package ran after iceberg-go's substrait package, or substrait-go's loader changed")
	}
	got := make([]*extensions.Collection, 4)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			c, err := extensions.GetDefaultCollection()
			if err != nil {
				t.Error(err)
			}
			got[i] = c
		})
	}
	wg.Wait()
	c := got[0]
	for _, other := range got[1:] {
		if other != c {
			t.Fatal("callers got different collections")
		}
	}
	if err := lazysubstrait.Load(); err != nil {
		t.Fatal(err)
	}
	if !c.URILoaded("extension:apache.iceberg:functions_set") {
		t.Error("iceberg-go's functions are not in the default collection")
	}
	entries, err := substrait.GetSubstraitExtensionsFS().ReadDir("extensions")
	if err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, e := range entries {
		if e.IsDir() || e.Name() == "unknown.yaml" {
			continue
		}
		if !c.URILoaded(extensions.SubstraitDefaultURIPrefix + e.Name()) {
			t.Errorf("%s is not loaded", e.Name())
		}
		loaded++
	}
	if loaded < 10 {
		t.Errorf("only %d default extension files", loaded)
	}
	if _, ok := c.GetScalarFunc(extensions.ID{URN: "extension:io.substrait:functions_comparison", Name: "equal"}); !ok {
		t.Error("the comparison function equal is not in the default collection")
	}
}
