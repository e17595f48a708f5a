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
// (iceberg-go got the empty collection, and put its own functions in it),
// and after Load, from any number of goroutines, that same collection is
// what substrait-go hands out, holding every default extension file and
// iceberg-go's functions.
func TestDeferredThenLoaded(t *testing.T) {
	if !lazysubstrait.Deferred() {
		t.Fatal("the default collection was not handed out empty at initialization: the package ran after iceberg-go's substrait package, or substrait-go's loader changed")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := lazysubstrait.Load(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	c, err := extensions.GetDefaultCollection()
	if err != nil {
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
