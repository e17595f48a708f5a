package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// The load test runs `lakehouse serve` as a process and 50 clients
// against it over loopback for a bounded time, each on branches of its
// own: commits (two tables set together), imports once the server takes
// them, temporary branches created and deleted, queries at refs, merges
// into main, and reads. Afterwards (through a restarted server) every
// commit a client got an answer for is there, on the branch it went to;
// no request failed, not even a merge (the clients' tables are disjoint);
// the server's peak RSS is reported and bounded; and the catalog file was
// the server's alone (an embedded command on the data dir finds it in use).

// Settings of TestServeLoad, from the environment.
const (
	envLoadDuration = "LAKEHOUSE_SERVE_LOAD_DURATION" // default 30s (10s under -race)
	envLoadClients  = "LAKEHOUSE_SERVE_LOAD_CLIENTS"  // default 50
	envLoadMaxRSS   = "LAKEHOUSE_SERVE_LOAD_MAX_RSS"  // MiB, default 1024 (about 180 MiB are used)
)

func envInt(t testing.TB, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", key, v)
	}
	return n
}

func envDuration(t testing.TB, key string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 30s", key, v)
	}
	return d
}

func TestServeLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("the load test takes half a minute")
	}
	def := 30 * time.Second
	if raceBuild {
		def = 10 * time.Second // scripts/test.sh runs the 30 s without -race
	}
	duration := envDuration(t, envLoadDuration, def)
	clients := envInt(t, envLoadClients, 50)
	maxRSS := int64(envInt(t, envLoadMaxRSS, 1024))
	dataDir := setupServeData(t)
	srv := startServe(t, dataDir, "127.0.0.1:0")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d clients for %s, server pid %d on %s", seed, clients, duration, srv.Pid(), srv.Addr)

	rec := newLoadRecord()
	lc := make([]*loadClient, clients)
	for i := range lc {
		lc[i] = newLoadClient(t, srv.Addr, i, seed, rec)
	}
	lc[0].prepare(t)
	for _, c := range lc[1:] {
		c.rows, c.imports, c.importFile = lc[0].rows, lc[0].imports, lc[0].importFile
		c.createWork(t)
	}
	if !lc[0].imports {
		t.Log("the server takes no imports yet: clients commit table states with CommitTables instead")
	}

	// The server's memory, sampled while the clients run.
	var peakRSS atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss := vmStatus(srv.Pid(), "VmRSS"); rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range lc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c.step(context.Background())
			}
		}()
	}
	wg.Wait()
	close(stopSampling)
	<-sampled
	hwm := vmStatus(srv.Pid(), "VmHWM")
	cpu := cpuTime(srv.Pid())
	metrics := scrape(t, srv.HTTPAddr)

	rec.report(t)
	t.Logf("server memory: VmHWM %d MiB, highest VmRSS sampled %d MiB (bound %d MiB); server CPU time %s (%.0f%% of one core over the load)",
		hwm>>10, peakRSS.Load()>>10, maxRSS, cpu.Round(10*time.Millisecond), 100*cpu.Seconds()/duration.Seconds())
	t.Logf("server metrics:\n%s", metrics)
	if hwm>>10 > maxRSS {
		t.Errorf("the server's peak RSS is %d MiB, over the bound of %d MiB (%s)", hwm>>10, maxRSS, envLoadMaxRSS)
	}
	if n := rec.failed(); n > 0 {
		t.Errorf("%d requests failed; first ones:\n%s", n, strings.Join(rec.failures, "\n"))
	}

	// The server holds the catalog alone: an embedded command on its data
	// dir finds it in use.
	if out, code := runCLI(t, dataDir, "branch", "ls"); code != errdefs.ExitUnavailable || !strings.Contains(out, "in use by another lakehouse process") {
		t.Errorf("an embedded `lakehouse branch ls` on the served data dir exited %d, want %d (in use):\n%s", code, errdefs.ExitUnavailable, out)
	}

	// Every acknowledged commit is there after a clean stop and a start.
	took, err := srv.stop(time.Minute)
	if err != nil {
		t.Fatalf("the server exited with %v after SIGTERM:\n%s", err, srv.out)
	}
	t.Logf("the server stopped %s after SIGTERM", took.Round(time.Millisecond))
	srv = startServe(t, dataDir, "127.0.0.1:0")
	check := newLoadClient(t, srv.Addr, clients, seed, rec)
	check.verify(t, rec.all())
	if _, err := srv.stop(time.Minute); err != nil {
		t.Fatalf("the server exited with %v after SIGTERM:\n%s", err, srv.out)
	}
}

// scrape reads the server's /metrics and keeps the lakehouse lines.
func scrape(t testing.TB, httpAddr string) string {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") && !strings.Contains(l, "_bucket{") {
			keep = append(keep, "  "+l)
		}
	}
	return strings.Join(keep, "\n")
}

// loadRecord is what the clients of a load did, shared between them.
type loadRecord struct {
	mu      sync.Mutex
	commits []ackedCommit
	// branches maps the branches clients created to whether they exist
	// as far as the clients were told: branchExists, branchDeleted, or
	// branchUnknown while a delete is under way (or was cut).
	branches map[catalog.BranchName]branchState
	// killed is set just before the fault test kills the server: from then
	// on an Unavailable error is a request the kill cut, not a failure.
	killed atomic.Bool
	ops    map[string]*opCount
	// failures are the first unexpected errors, one line each.
	failures []string
	nfailed  int
}

type opCount struct {
	ok, conflict, cut, failed int
	// took is how long each answered request took.
	took []time.Duration
}

type branchState int

const (
	branchUnknown branchState = iota
	branchExists
	branchDeleted
)

// ackedCommit is a commit a client got an answer for: its id, the branch
// it went to, and the state of the client's tables in it.
type ackedCommit struct {
	client int
	branch catalog.BranchName
	id     catalog.CommitID
	op     string
	// state of tables load.c<client>a and b in the commit (0: absent);
	// -1 when the commit does not record it.
	state int
}

func newLoadRecord() *loadRecord {
	return &loadRecord{branches: map[catalog.BranchName]branchState{}, ops: map[string]*opCount{}}
}

func (r *loadRecord) count(op string) *opCount {
	c := r.ops[op]
	if c == nil {
		c = &opCount{}
		r.ops[op] = c
	}
	return c
}

// done records the outcome of one request. Conflicts are expected where
// conflictOK; any other error is a failure.
func (r *loadRecord) done(client int, op string, err error, conflictOK bool, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.count(op)
	switch {
	case err == nil:
		c.ok++
		c.took = append(c.took, took)
	case conflictOK && errdefs.Is(err, errdefs.ErrConflict):
		c.conflict++
		c.took = append(c.took, took)
	case r.killed.Load() && errdefs.Is(err, errdefs.ErrUnavailable):
		c.cut++
	default:
		c.failed++
		r.nfailed++
		if len(r.failures) < 20 {
			r.failures = append(r.failures, fmt.Sprintf("  client %d %s: %v", client, op, err))
		}
	}
}

func (r *loadRecord) ack(c ackedCommit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commits = append(r.commits, c)
}

func (r *loadRecord) branch(name catalog.BranchName, s branchState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.branches[name] = s
}

func (r *loadRecord) failed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nfailed
}

func (r *loadRecord) all() []ackedCommit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ackedCommit(nil), r.commits...)
}

func (r *loadRecord) report(t testing.TB) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := make([]string, 0, len(r.ops))
	total := 0
	for op, c := range r.ops {
		ops = append(ops, op)
		total += c.ok + c.conflict + c.cut + c.failed
	}
	sort.Strings(ops)
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests, %d commits acknowledged, %d branches created:", total, len(r.commits), len(r.branches))
	for _, op := range ops {
		c := r.ops[op]
		slices.Sort(c.took)
		at := func(p float64) time.Duration {
			if len(c.took) == 0 {
				return 0
			}
			return c.took[min(int(p*float64(len(c.took))), len(c.took)-1)].Round(100 * time.Microsecond)
		}
		fmt.Fprintf(&b, "\n  %-14s %6d ok %5d conflicts %5d cut by a kill %4d failed   p50 %8s p99 %8s",
			op, c.ok, c.conflict, c.cut, c.failed, at(0.5), at(0.99))
	}
	t.Log(b.String())
}

// loadClient is one client of a load. It owns branch c<N>.work and tables
// load.c<N>a and load.c<N>b, which each of its commits sets to the same
// state together (absent, or version v), so a commit that is half there
// shows as the two tables differing.
type loadClient struct {
	id   int
	svc  *flight.Client
	rng  *rand.Rand
	rec  *loadRecord
	work catalog.BranchName
	// state of the client's tables on work (0: absent), and the next
	// version to commit.
	state, next int
	// pending is the state of a commit whose answer a kill cut (valid
	// while cut is set): work holds it or state.
	pending    int
	cut        bool
	tmp        int   // temporary branches made
	rows       int64 // rows of sales.transactions
	imports    bool  // whether the server takes imports
	importFile string
	// lastMerge is the last merge into main the client got an answer for.
	lastMerge catalog.CommitID
	began     time.Time // of the request under way
}

// begin notes the start of a request, done its end.
func (c *loadClient) begin() { c.began = time.Now() }

func (c *loadClient) done(op string, err error, conflictOK bool) {
	c.rec.done(c.id, op, err, conflictOK, time.Since(c.began))
}

func newLoadClient(t testing.TB, addr string, id int, seed uint64, rec *loadRecord) *loadClient {
	t.Helper()
	c, err := flight.Dial(addr, flight.DialOptions{Author: fmt.Sprintf("client%d", id)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &loadClient{id: id, svc: c, rng: rand.New(rand.NewPCG(seed, uint64(id))), rec: rec,
		work: catalog.BranchName(fmt.Sprintf("c%d.work", id))}
}

var mainRef = catalog.Ref{Name: string(catalog.MainBranch)}

// prepare learns the row count of sales.transactions, whether the server
// takes imports, and creates the client's branch.
func (c *loadClient) prepare(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	n, err := c.count(ctx, mainRef)
	if err != nil {
		t.Fatalf("the first query: %v", err)
	}
	c.rows = n
	c.createWork(t)
	c.importFile = filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(c.importFile, []byte("id,kind\n1,a\n2,b\n3,c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = c.svc.ImportTable(ctx, catalog.ImportRequest{Branch: c.work, Sources: []string{c.importFile},
		Table: catalog.TableIdent{Namespace: "load", Name: fmt.Sprintf("c%dimp", c.id)}})
	switch {
	case err == nil:
		c.imports = true
	case errdefs.Is(err, errdefs.ErrFailedPrecondition) && strings.Contains(err.Error(), "not built yet"):
	default:
		t.Fatalf("the first import: %v", err)
	}
}

func (c *loadClient) createWork(t testing.TB) {
	t.Helper()
	if _, err := c.svc.CreateBranch(context.Background(), c.work, mainRef); err != nil {
		t.Fatalf("create %s: %v", c.work, err)
	}
	c.rec.branch(c.work, branchExists)
}

// tables are the idents of the client's pair of tables.
func (c *loadClient) tables() (a, b catalog.TableIdent) {
	return catalog.TableIdent{Namespace: "load", Name: fmt.Sprintf("c%da", c.id)},
		catalog.TableIdent{Namespace: "load", Name: fmt.Sprintf("c%db", c.id)}
}

// entry is table state v of client id (nil for 0, absent). Its metadata
// file does not exist: nothing reads it, commits and merges only compare
// locations.
func entry(id, v int) *catalog.TableEntry {
	if v == 0 {
		return nil
	}
	return &catalog.TableEntry{
		MetadataLocation: fmt.Sprintf("warehouse/load/c%d/v%d.metadata.json", id, v),
		TableUUID:        "9b2f7c1e-3d4a-4e5f-8a6b-7c8d9e0f1a2b",
		SnapshotID:       int64(v),
	}
}

var stateRe = regexp.MustCompile(`/c(\d+)/v(\d+)\.metadata\.json$`)

// states reads the state of every client's table pair at ref from a
// listing of namespace load: client → [state of a, state of b].
func states(ctx context.Context, svc catalog.Service, ref catalog.Ref) (map[int][2]int, error) {
	ts, err := svc.ListTables(ctx, ref, "load")
	if err != nil {
		return nil, err
	}
	out := map[int][2]int{}
	for _, s := range ts {
		m := stateRe.FindStringSubmatch(s.Metadata)
		if m == nil {
			continue // an imported table
		}
		id, _ := strconv.Atoi(m[1])
		v, _ := strconv.Atoi(m[2])
		p := out[id]
		switch s.Name {
		case fmt.Sprintf("c%da", id):
			p[0] = v
		case fmt.Sprintf("c%db", id):
			p[1] = v
		}
		out[id] = p
	}
	return out, nil
}

// count runs the load's query at ref: the rows of sales.transactions.
func (c *loadClient) count(ctx context.Context, ref catalog.Ref) (int64, error) {
	r, err := c.svc.Query(ctx, flight.QueryCommand{SQL: "SELECT count(*) AS n FROM sales.transactions", Ref: ref.String()})
	if err != nil {
		return 0, err
	}
	defer r.Release()
	var n int64 = -1
	for r.Next() {
		rec := r.RecordBatch()
		if rec.NumRows() == 1 {
			v, err := strconv.ParseInt(rec.Column(0).ValueStr(0), 10, 64)
			if err != nil {
				return 0, err
			}
			n = v
		}
	}
	return n, r.Err()
}

// step makes one request (or a short sequence) chosen at random.
func (c *loadClient) step(ctx context.Context) {
	switch p := c.rng.IntN(100); {
	case p < 25:
		c.commit(ctx)
	case p < 35 && c.imports:
		c.importRows(ctx)
	case p < 50:
		c.query(ctx)
	case p < 62:
		c.merge(ctx)
	case p < 80:
		c.tempBranch(ctx)
	default:
		c.read(ctx)
	}
}

// commit sets the client's two tables on its branch to a new state in
// one commit: mostly a new version, sometimes absent.
func (c *loadClient) commit(ctx context.Context) error {
	v := 0
	if c.state == 0 || c.rng.IntN(5) > 0 {
		c.next++
		v = c.next
	}
	a, b := c.tables()
	c.pending, c.cut = v, true
	c.begin()
	cm, err := c.svc.CommitTables(ctx, c.work, "", catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{
		a: entry(c.id, v), b: entry(c.id, v)}}, catalog.CommitOptions{Message: fmt.Sprintf("state %d", v)})
	c.done("commit", err, false)
	if err != nil {
		return err
	}
	c.state, c.cut = v, false
	c.rec.ack(ackedCommit{client: c.id, branch: c.work, id: cm.ID, op: "commit", state: v})
	return nil
}

// importRows imports a small CSV file into a table of the client's own.
func (c *loadClient) importRows(ctx context.Context) error {
	c.begin()
	res, err := c.svc.ImportTable(ctx, catalog.ImportRequest{Branch: c.work, Sources: []string{c.importFile},
		Table: catalog.TableIdent{Namespace: "load", Name: fmt.Sprintf("c%dimp", c.id)}, Mode: catalog.ImportReplace})
	c.done("import", err, false)
	if err == nil && res.Commit != nil {
		c.rec.ack(ackedCommit{client: c.id, branch: c.work, id: res.Commit.ID, op: "import", state: c.state})
	}
	return err
}

// query counts sales.transactions at main, at the client's branch, at the
// last merge it made, or at main an instant ago.
func (c *loadClient) query(ctx context.Context) error {
	ref := mainRef
	switch c.rng.IntN(4) {
	case 1:
		ref = catalog.Ref{Name: string(c.work)}
	case 2:
		if c.lastMerge != "" {
			ref = catalog.Ref{Name: string(catalog.MainBranch), Commit: string(c.lastMerge)}
		}
	case 3:
		ref = catalog.Ref{Name: string(catalog.MainBranch), Time: time.Now().UTC().Add(-100 * time.Millisecond)}
	}
	c.begin()
	n, err := c.count(ctx, ref)
	if err == nil && n != c.rows {
		err = fmt.Errorf("query at %s counted %d rows, want %d", ref, n, c.rows)
	}
	c.done("query", err, false)
	return err
}

// merge merges the client's branch into main. The clients' tables are
// disjoint, so merges racing each other for main rebase onto it and never
// conflict.
func (c *loadClient) merge(ctx context.Context) error {
	c.begin()
	res, err := c.svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: string(c.work)}, Into: catalog.MainBranch})
	c.done("merge", err, false)
	if err == nil && res.Commit != nil {
		c.lastMerge = res.Commit.ID
		c.rec.ack(ackedCommit{client: c.id, branch: catalog.MainBranch, id: res.Commit.ID, op: "merge", state: c.state})
	}
	return err
}

// tempBranch creates a branch from main or from the client's branch,
// sometimes commits a namespace to it, and deletes it.
func (c *loadClient) tempBranch(ctx context.Context) error {
	c.tmp++
	name := catalog.BranchName(fmt.Sprintf("c%d.tmp%d", c.id, c.tmp))
	from := mainRef
	if c.rng.IntN(2) == 0 {
		from = catalog.Ref{Name: string(c.work)}
	}
	c.begin()
	_, err := c.svc.CreateBranch(ctx, name, from)
	c.done("branch-create", err, false)
	if err != nil {
		return err
	}
	c.rec.branch(name, branchExists)
	if c.rng.IntN(2) == 0 {
		c.begin()
		cm, err := c.svc.CreateNamespace(ctx, name, catalog.Namespace(fmt.Sprintf("scratch%d", c.tmp)), catalog.CommitOptions{})
		c.done("namespace", err, false)
		if err != nil {
			return err
		}
		c.rec.ack(ackedCommit{client: c.id, branch: name, id: cm.ID, op: "namespace", state: -1})
	}
	c.rec.branch(name, branchUnknown)
	c.begin()
	err = c.svc.DeleteBranch(ctx, name)
	c.done("branch-delete", err, false)
	if err != nil {
		return err
	}
	c.rec.branch(name, branchDeleted)
	return nil
}

// read lists branches, reads main's log, or checks the client's tables on
// its branch.
func (c *loadClient) read(ctx context.Context) error {
	c.begin()
	var err error
	switch c.rng.IntN(3) {
	case 0:
		_, err = c.svc.ListBranches(ctx)
		c.done("list-branches", err, false)
	case 1:
		_, err = c.svc.Log(ctx, mainRef, 20)
		c.done("log", err, false)
	default:
		var st map[int][2]int
		st, err = states(ctx, c.svc, catalog.Ref{Name: string(c.work)})
		if err == nil && st[c.id] != [2]int{c.state, c.state} {
			err = fmt.Errorf("tables on %s are at states %v, want %d", c.work, st[c.id], c.state)
		}
		c.done("list-tables", err, false)
	}
	return err
}

// verify checks commits clients were answered for: each is in the history
// of the branch it went to (or exists, if that branch was deleted since),
// and holds the client's tables in the state it had.
func (c *loadClient) verify(t testing.TB, commits []ackedCommit) {
	t.Helper()
	ctx := context.Background()
	c.rec.mu.Lock()
	gone := map[catalog.BranchName]bool{}
	for b, s := range c.rec.branches {
		if s != branchExists {
			gone[b] = true
		}
	}
	c.rec.mu.Unlock()
	// The history of each branch, read once.
	history := map[catalog.BranchName]map[catalog.CommitID]bool{}
	bad := 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if bad++; bad > 10 {
			t.Fatalf("too many missing commits")
		}
	}
	for _, a := range commits {
		at := catalog.Ref{Commit: string(a.id)}
		if gone[a.branch] {
			if _, err := c.svc.Resolve(ctx, at); err != nil {
				fail("%s of client %d, acknowledged as %s on %s (deleted since), is missing: %v", a.op, a.client, a.id.Short(), a.branch, err)
				continue
			}
		} else {
			h, ok := history[a.branch]
			if !ok {
				log, err := c.svc.Log(ctx, catalog.Ref{Name: string(a.branch)}, 0)
				if err != nil {
					fail("log of %s: %v", a.branch, err)
					continue
				}
				h = map[catalog.CommitID]bool{}
				for _, cm := range log {
					h[cm.ID] = true
				}
				history[a.branch] = h
			}
			if !h[a.id] {
				fail("%s of client %d, acknowledged as %s on %s, is not in its history", a.op, a.client, a.id.Short(), a.branch)
				continue
			}
		}
		if a.state < 0 {
			continue
		}
		st, err := states(ctx, c.svc, at)
		if err != nil {
			fail("tables at %s: %v", at, err)
		} else if got := st[a.client]; got != [2]int{a.state, a.state} {
			fail("%s of client %d at %s holds its tables at states %v, want %d for both", a.op, a.client, a.id.Short(), got, a.state)
		}
	}
}
