package fleet

import (
	"testing"
	"time"
)

func TestLeastLoaded(t *testing.T) {
	t.Parallel()
	beat := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	w := func(name string, running int, state State) WorkerInfo {
		return WorkerInfo{Registration: Registration{Name: name}, State: state, LastHeartbeat: beat, Load: Load{Running: running}}
	}
	all := func(WorkerInfo) bool { return true }
	for _, tc := range []struct {
		name     string
		workers  []WorkerInfo
		placed   []string // placed after the heartbeats
		before   []string // placed before them (counted by the heartbeats)
		eligible func(WorkerInfo) bool
		want     string
	}{
		{"none", nil, nil, nil, all, ""},
		{"ties by name", []WorkerInfo{w("a", 0, StateAlive), w("b", 0, StateAlive)}, nil, nil, all, "a"},
		{"fewest running", []WorkerInfo{w("a", 2, StateAlive), w("b", 1, StateAlive)}, nil, nil, all, "b"},
		{"placed since the heartbeat count", []WorkerInfo{w("a", 0, StateAlive), w("b", 1, StateAlive)}, []string{"a", "a"}, nil, all, "b"},
		{"placed before it do not", []WorkerInfo{w("a", 0, StateAlive), w("b", 1, StateAlive)}, nil, []string{"a", "a"}, all, "a"},
		{"lost left out", []WorkerInfo{w("a", 0, StateLost), w("b", 3, StateAlive)}, nil, nil, all, "b"},
		{"ineligible left out", []WorkerInfo{w("a", 0, StateAlive), w("b", 3, StateAlive)}, nil, nil,
			func(w WorkerInfo) bool { return w.Name != "a" }, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPlacements()
			for _, n := range tc.placed {
				p.Placed(n, beat.Add(time.Second))
			}
			for _, n := range tc.before {
				p.Placed(n, beat.Add(-time.Second))
			}
			got, ok := p.LeastLoaded(tc.workers, tc.eligible)
			if got.Name != tc.want || ok != (tc.want != "") {
				t.Fatalf("LeastLoaded: %q %v, want %q", got.Name, ok, tc.want)
			}
		})
	}
}
