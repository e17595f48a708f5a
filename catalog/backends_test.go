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
			s, err := bolt.Open(filepath.Join(t.TempDir(), "catalog.db"), bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
}
