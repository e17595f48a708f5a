package flight

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Metrics counts what the server does, for /metrics in the Prometheus
// text format. A nil *Metrics counts nothing.
type Metrics struct {
	mu       sync.Mutex
	requests map[string]int64
	errors   map[[2]string]int64 // method, class
	unauth   int64
	commits  int64
	running  int64 // queries streaming now
	queries  histogram
	runs     histogram
	// RunsByStatus, when set, counts the runs of the data dir by status.
	RunsByStatus func() map[string]int64
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{requests: map[string]int64{}, errors: map[[2]string]int64{},
		queries: newHistogram(), runs: newHistogram()}
}

// histogram buckets durations in seconds.
type histogram struct {
	bounds []float64
	counts []int64
	sum    float64
	n      int64
}

func newHistogram() histogram {
	b := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}
	return histogram{bounds: b, counts: make([]int64, len(b))}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	for i, b := range h.bounds {
		if s <= b {
			h.counts[i]++
		}
	}
	h.sum += s
	h.n++
}

func (m *Metrics) request(method string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.requests[strings.TrimPrefix(method, ActionPrefix)]++
	m.mu.Unlock()
}

// done records the end of a request; a write that succeeded is a commit.
func (m *Metrics) done(method string, _ time.Duration, err error) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.errors[[2]string{strings.TrimPrefix(method, ActionPrefix), errdefs.ClassName(err)}]++
		return
	}
	if commitActions[method] {
		m.commits++
	}
}

// commitActions are the actions that commit when they succeed.
var commitActions = map[string]bool{
	ActionCreateNamespace: true, ActionDeleteNamespace: true, ActionDeleteTable: true,
	ActionRevertTable: true, ActionImportTable: true, ActionCommitTables: true, ActionMerge: true,
}

// Commit counts a catalog commit made outside the actions above (a run's
// merge).
func (m *Metrics) Commit() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.commits++
	m.mu.Unlock()
}

func (m *Metrics) unauthenticated() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.unauth++
	m.mu.Unlock()
}

// QueryStarted counts a query that starts streaming; query or
// QueryStreamed ends it.
func (m *Metrics) QueryStarted() {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.running++
	m.mu.Unlock()
}

func (m *Metrics) query(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.running--
	m.queries.observe(d)
	if err != nil {
		m.errors[[2]string{"DoGet", errdefs.ClassName(err)}]++
	}
	m.mu.Unlock()
}

// Run records the duration of a finished run.
func (m *Metrics) Run(d time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.runs.observe(d)
	m.mu.Unlock()
}

// Request counts a request made outside this package's Flight methods
// (HTTP, Flight SQL).
func (m *Metrics) Request(method string, err error) {
	m.request(method)
	m.done(method, 0, err)
}

// QueryStreamed records the duration of a query streamed outside this
// package's DoGet (Flight SQL's), from its start to its last row; Request
// counts its call and error. QueryStarted counted its start.
func (m *Metrics) QueryStreamed(d time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.running--
	m.queries.observe(d)
	m.mu.Unlock()
}

// WriteText writes the metrics in the Prometheus text format.
func (m *Metrics) WriteText(w io.Writer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	b.WriteString("# HELP lakehouse_requests_total Requests by method.\n# TYPE lakehouse_requests_total counter\n")
	for _, k := range slices.Sorted(maps.Keys(m.requests)) {
		fmt.Fprintf(&b, "lakehouse_requests_total{method=%q} %d\n", k, m.requests[k])
	}
	b.WriteString("# HELP lakehouse_request_errors_total Failed requests by method and error class.\n# TYPE lakehouse_request_errors_total counter\n")
	keys := slices.SortedFunc(maps.Keys(m.errors), func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) })
	for _, k := range keys {
		fmt.Fprintf(&b, "lakehouse_request_errors_total{method=%q,class=%q} %d\n", k[0], k[1], m.errors[k])
	}
	fmt.Fprintf(&b, "# HELP lakehouse_unauthenticated_total Requests refused for a missing or bad API key.\n# TYPE lakehouse_unauthenticated_total counter\nlakehouse_unauthenticated_total %d\n", m.unauth)
	fmt.Fprintf(&b, "# HELP lakehouse_catalog_commits_total Catalog commits made through the server.\n# TYPE lakehouse_catalog_commits_total counter\nlakehouse_catalog_commits_total %d\n", m.commits)
	fmt.Fprintf(&b, "# HELP lakehouse_queries_running Queries streaming results now.\n# TYPE lakehouse_queries_running gauge\nlakehouse_queries_running %d\n", m.running)
	writeHistogram(&b, "lakehouse_query_duration_seconds", "Duration of queries, from the first to the last row sent.", &m.queries)
	writeHistogram(&b, "lakehouse_run_duration_seconds", "Duration of pipeline runs.", &m.runs)
	if m.RunsByStatus != nil {
		b.WriteString("# HELP lakehouse_runs Runs of the data dir by status.\n# TYPE lakehouse_runs gauge\n")
		st := m.RunsByStatus()
		for _, k := range slices.Sorted(maps.Keys(st)) {
			fmt.Fprintf(&b, "lakehouse_runs{status=%q} %d\n", k, st[k])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHistogram(b *strings.Builder, name, help string, h *histogram) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	for i, bound := range h.bounds {
		fmt.Fprintf(b, "%s_bucket{le=\"%g\"} %d\n", name, bound, h.counts[i])
	}
	fmt.Fprintf(b, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, h.n, name, h.sum, name, h.n)
}
