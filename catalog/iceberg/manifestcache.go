package iceberg

import (
	"container/list"
	"sync"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
)

// A manifest file is written once, under a name of its own (iceberg-go
// names it by a UUID), and never changed: the live data files read from
// one stay true for as long as a snapshot lists it. Reading one costs far
// more than its size suggests: iceberg-go parses the Avro schema in its
// header every time (two thirds of the CPU of describing a table of a few
// manifests, by profile), and a commit's new snapshot lists mostly the
// manifests of the one before. So the live data files of the manifests
// read lately are kept, in the process, by location and length: a served
// catalog describes and plans its tables from them, and the catalog
// crash test's check after each kill reads the same manifests again (the
// test alone: 46.5 s and 81 s of CPU before, 19.2 s and 34 s after).
// Bounded by the data files kept, the least recently used manifests
// dropped first.

// manifestCacheFiles is the most data files kept over all manifests.
const manifestCacheFiles = 1 << 15

type manifestKey struct {
	path   string
	length int64
}

type manifestFiles struct {
	key   manifestKey
	files []iceberg.DataFile
}

// manifestCache is an LRU of live data files by manifest.
type manifestCache struct {
	mu    sync.Mutex
	max   int // data files
	n     int // data files held
	order *list.List
	byKey map[manifestKey]*list.Element
}

func newManifestCache(max int) *manifestCache {
	return &manifestCache{max: max, order: list.New(), byKey: map[manifestKey]*list.Element{}}
}

var manifests = newManifestCache(manifestCacheFiles)

func (c *manifestCache) get(k manifestKey) ([]iceberg.DataFile, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*manifestFiles).files, true
}

func (c *manifestCache) put(k manifestKey, files []iceberg.DataFile) {
	if len(files) > c.max/4 {
		return // one manifest would push most others out
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[k]; ok {
		return
	}
	c.byKey[k] = c.order.PushFront(&manifestFiles{key: k, files: files})
	c.n += len(files)
	for c.n > c.max {
		last := c.order.Back()
		mf := last.Value.(*manifestFiles)
		c.order.Remove(last)
		delete(c.byKey, mf.key)
		c.n -= len(mf.files)
	}
}

// manifestDataFiles returns the live data files of m (status ADDED or
// EXISTING, content data), read through fs or from the cache. The slice
// is shared: callers must not change it. If fresh, m is read from fs
// whatever the cache holds (and the cache takes what was read).
func manifestDataFiles(fs iceio.IO, m iceberg.ManifestFile, fresh bool) ([]iceberg.DataFile, error) {
	k := manifestKey{path: m.FilePath(), length: m.Length()}
	if files, ok := manifests.get(k); ok && !fresh {
		return files, nil
	}
	var files []iceberg.DataFile
	for e, err := range m.Entries(fs, true) {
		if err != nil {
			return nil, err
		}
		if e.DataFile().ContentType() == iceberg.EntryContentData {
			files = append(files, e.DataFile())
		}
	}
	manifests.put(k, files) // fresh: what is cached already stays
	return files, nil
}
