package catalog_test

import (
	"path/filepath"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/catalog/memstore"
)

type storeBackend struct {
	name string
	open func(t *testing.T) catalog.Store
}

// storeBackends lists every Store implementation the catalog tests run on.
func storeBackends() []storeBackend {
	return []storeBackend{
		{"memstore", func(t *testing.T) catalog.Store { return memstore.New() }},
		{"bolt", func(t *testing.T) catalog.Store {
			// NoSync: these tests check logic, not durability (see crash_test.go).
			s, err := bolt.Open(filepath.Join(t.TempDir(), "catalog.db"), bolt.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
}
