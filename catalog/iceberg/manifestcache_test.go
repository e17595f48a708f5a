package iceberg

import (
	"testing"

	"github.com/apache/iceberg-go"
)

// The cache keeps at most max data files, dropping the least recently
// used manifests first, and keeps no manifest holding over a quarter of
// max.
func TestManifestCacheBound(t *testing.T) {
	c := newManifestCache(8)
	files := func(n int) []iceberg.DataFile { return make([]iceberg.DataFile, n) }
	k := func(p string) manifestKey { return manifestKey{path: p, length: 1} }
	c.put(k("a"), files(2))
	c.put(k("b"), files(2))
	c.put(k("c"), files(2))
	c.put(k("d"), files(2))
	if _, ok := c.get(k("a")); !ok { // a is now the most recent
		t.Fatal("a dropped while the cache held 8 of 8 files")
	}
	c.put(k("e"), files(2)) // over: b, the least recent, goes
	if _, ok := c.get(k("b")); ok {
		t.Error("b kept past the bound")
	}
	for _, p := range []string{"a", "c", "d", "e"} {
		if _, ok := c.get(k(p)); !ok {
			t.Errorf("%s dropped", p)
		}
	}
	if c.n != 8 {
		t.Errorf("holds %d files, want 8", c.n)
	}
	c.put(k("big"), files(3))
	if _, ok := c.get(k("big")); ok {
		t.Error("a manifest of over a quarter of the bound was kept")
	}
	if _, ok := c.get(manifestKey{path: "a", length: 2}); ok {
		t.Error("a manifest of another length matched")
	}
}
