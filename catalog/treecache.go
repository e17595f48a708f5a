package catalog

import "sync"

// treeCache keeps recently used decoded trees. Trees are immutable and
// content-addressed, so entries never go stale.
type treeCache struct {
	mu    sync.Mutex
	trees map[TreeID]*Tree
	order []TreeID // insertion order, for eviction
}

const treeCacheSize = 64

func (c *treeCache) get(id TreeID) *Tree {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trees[id]
}

func (c *treeCache) add(id TreeID, t *Tree) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trees == nil {
		c.trees = map[TreeID]*Tree{}
	}
	if _, ok := c.trees[id]; ok {
		return
	}
	if len(c.order) >= treeCacheSize {
		delete(c.trees, c.order[0])
		c.order = c.order[1:]
	}
	c.trees[id] = t
	c.order = append(c.order, id)
}
