package memstore_test

import (
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/memstore"
	"github.com/lakehouse-dev/lakehouse/catalog/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) catalog.Store {
		s := memstore.New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
