package fleet

import (
	"sync"
	"time"
)

// Placements counts the queries a control plane placed on each worker
// that the worker has not yet reported: a worker's load is the queries it
// reported running at its last heartbeat (Load.Running) plus those placed
// on it since. It is safe for concurrent use.
type Placements struct {
	mu     sync.Mutex
	placed map[string][]time.Time
}

// NewPlacements returns an empty count.
func NewPlacements() *Placements { return &Placements{placed: map[string][]time.Time{}} }

// Placed records a query placed on worker name at t.
func (p *Placements) Placed(name string, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.placed[name] = append(p.placed[name], t)
}

// load is w's load: its reported running queries and functions plus the
// queries placed on it after its last heartbeat. Older placements are
// forgotten (the heartbeat counted them if they still run).
func (p *Placements) load(w WorkerInfo) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := p.placed[w.Name]
	kept := ts[:0]
	for _, t := range ts {
		if t.After(w.LastHeartbeat) {
			kept = append(kept, t)
		}
	}
	p.placed[w.Name] = kept
	return w.Load.Running + len(kept)
}

// LeastLoaded picks among workers (sorted by name, as Registry.Alive
// lists them) the one with the smallest load, the first by name on a tie,
// leaving out those eligible refuses. ok is false when none is left.
func (p *Placements) LeastLoaded(workers []WorkerInfo, eligible func(WorkerInfo) bool) (best WorkerInfo, ok bool) {
	bestLoad := 0
	for _, w := range workers {
		if w.State != StateAlive || (eligible != nil && !eligible(w)) {
			continue
		}
		if l := p.load(w); !ok || l < bestLoad {
			best, bestLoad, ok = w, l, true
		}
	}
	return best, ok
}
