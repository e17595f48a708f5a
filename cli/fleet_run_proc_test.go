package cli

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/killpoints"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Runs on a fleet, end to end (issue 15): a control plane and workers as
// processes over a warehouse on the test's MinIO run projects whose
// Python models go to the workers; the same projects run on a single
// node (the embedded CLI over a warehouse on local disk) give the rows
// the fleet's must equal.

// runTimeout bounds one run of the CLI in these tests (the 200-function
// DAG on a loaded machine).
const runTimeout = 5 * time.Minute

// fleetRun is a fleet over MinIO with the sample table on main, and a
// single node holding the same data.
type fleetRun struct {
	*fleetTest
	// remote is the environment of the admin's CLI against the control
	// plane; singleEnv that of the embedded CLI over the single node's
	// data dir, single.
	remote    map[string]string
	single    string
	singleEnv map[string]string
}

// newFleetRun starts a control plane and the named workers over a new
// warehouse on MinIO, and loads the sample table on main there and on a
// single node.
func newFleetRun(t *testing.T, workers ...string) *fleetRun {
	t.Helper()
	srv := miniotest.Start(t)
	wh := map[string]string{envWarehouse: "s3://" + srv.Bucket + "/fleetrun", envS3Endpoint: srv.Endpoint}
	// Every process runs functions with the process launcher, from the
	// package cache the CLI's tests share (only a first run on a machine
	// installs packages).
	procs := map[string]string{envEnvCacheDir: filepath.Join(envtest.Root(), "envcache-cli"), envLauncher: launchers.Process}
	for _, m := range []map[string]string{wh, procs} {
		for k, v := range m {
			t.Setenv(k, v)
		}
	}
	f := newFleetTest(t, wh)
	for i, n := range workers {
		if i == 0 {
			// The first allocates spares for its fetches at start.
			f.startWorker(n, "--shm-reserve", sizeText(testShmReserve))
			continue
		}
		f.startWorker(n)
	}
	f.await("the workers alive", alive(workers...))
	// Their shared-memory folders, as /dev/shm would be there.
	for _, p := range append([]*serveProc{f.control}, slices.Collect(maps.Values(f.workers))...) {
		if err := os.MkdirAll(shmDir(p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fr := &fleetRun{fleetTest: f, remote: map[string]string{envAddr: f.addr, envAPIKey: f.adminKey}, single: t.TempDir()}
	shm := filepath.Join(fr.single, "shm")
	if err := os.Mkdir(shm, 0o755); err != nil {
		t.Fatal(err)
	}
	fr.singleEnv = map[string]string{envWarehouse: "", envS3Endpoint: "", envShmDir: shm}
	for k, v := range procs {
		fr.singleEnv[k] = v
	}
	for _, k := range []string{"PIP_INDEX_URL", "PIP_FIND_LINKS"} {
		if v := os.Getenv(k); v != "" {
			fr.singleEnv[k] = v
		}
	}
	for _, args := range [][]string{
		{"checkout", "-b", "root.setup"},
		{"namespace", "create", "sales"},
		{"table", "import", "sales.transactions", "--from", testdataDir(t, "sample", "transactions")},
		{"merge", "root.setup", "--into", "main"},
	} {
		fr.must(t, false, args...)
		fr.must(t, true, args...)
	}
	return fr
}

// lh runs the CLI against the fleet, or the single node.
func (fr *fleetRun) lh(single bool, args ...string) (stdout, stderr string, code int) {
	if single {
		return fr.keys.runInFor(runTimeout, fr.single, fr.singleEnv, args...)
	}
	return fr.keys.runInFor(runTimeout, fr.keys.client, fr.remote, args...)
}

func (fr *fleetRun) must(t *testing.T, single bool, args ...string) string {
	t.Helper()
	out, errOut, code := fr.lh(single, args...)
	if code != 0 {
		t.Fatalf("lakehouse %s (single node: %v): exit %d\n%s%s", strings.Join(args, " "), single, code, out, errOut)
	}
	return out
}

// pythonModels lists the Python models of a run record.
func pythonModels(rec *runrec.Record) []*runrec.Model {
	var out []*runrec.Model
	for _, m := range rec.Models {
		if m.Language == "python" {
			out = append(out, m)
		}
	}
	return out
}

// testShmReserve is the --shm-reserve of a fleetRun's first worker.
const testShmReserve = 128 << 20

// reserved is what the spares folder of a worker's shared-memory folder
// holds: bytes in files, and bytes allocated to them.
func reserved(t *testing.T, p *serveProc) (size, allocated int64) {
	t.Helper()
	dir := filepath.Join(shmDir(p), "spares")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, e.Name()), &st); err != nil {
			t.Fatal(err)
		}
		size += st.Size
		allocated += st.Blocks * 512
	}
	return size, allocated
}

// runArgs are the flags of every run of these tests: each run computes
// every model (no result cache), prints its record.
func runArgs(project, branch string, extra ...string) []string {
	return append([]string{"run", "-p", project, "-r", branch, "--no-cache", "--preview", "off", "-O", "json"}, extra...)
}

// record is the run's record: from its -O json output, else the newest
// run the node lists.
func (fr *fleetRun) record(t *testing.T, single bool, out string) *runrec.Record {
	t.Helper()
	var rec runrec.Record
	if json.Unmarshal([]byte(out), &rec) == nil && rec.ID != "" {
		return &rec
	}
	var recs []struct {
		ID string `json:"id"`
	}
	mustJSON(t, fr.must(t, single, "runs", "ls", "-O", "json"), &recs)
	if len(recs) == 0 {
		t.Fatal("no runs listed")
	}
	mustJSON(t, fr.must(t, single, "runs", "get", recs[0].ID, "-O", "json"), &rec)
	return &rec
}

// runBoth runs project on a new branch from main on the single node, then
// on the fleet, each to success, and returns the fleet's record and its
// output.
func (fr *fleetRun) runBoth(t *testing.T, project, branch string, extra ...string) (*runrec.Record, string) {
	t.Helper()
	var rec *runrec.Record
	var log string
	var took [2]time.Duration
	defer func() { t.Logf("%s: %s on the single node, %s on the fleet", branch, took[0], took[1]) }()
	for i, single := range []bool{true, false} {
		fr.must(t, single, "branch", "create", branch, "--from-ref", "main")
		started := time.Now()
		out, errOut, code := fr.lh(single, runArgs(project, branch, extra...)...)
		if code != 0 {
			t.Fatalf("run of %s (single node: %v): exit %d\n%s%s", project, single, code, out, errOut)
		}
		took[i] = time.Since(started).Round(10 * time.Millisecond)
		rec, log = fr.record(t, single, out), errOut
	}
	if rec.Status != runrec.StatusSucceeded {
		t.Fatalf("run %s: %s %s", rec.ID, rec.Status, rec.Error)
	}
	return rec, log
}

// sameRows compares tables on branch, the fleet's against the single
// node's, row by row.
func (fr *fleetRun) sameRows(t *testing.T, branch string, tables ...string) {
	t.Helper()
	for _, tb := range tables {
		args := []string{"query", "SELECT * FROM " + tb + " ORDER BY ALL", "-O", "csv", "-r", branch}
		want, got := fr.must(t, true, args...), fr.must(t, false, args...)
		if got != want || strings.Count(want, "\n") < 2 {
			t.Errorf("%s on %s: the fleet's\n%s\nthe single node's\n%s", tb, branch, got, want)
		}
	}
}

// placedOnWorkers checks that every Python model of rec ran once, on a
// worker of names, and returns the workers by model.
func placedOnWorkers(t *testing.T, rec *runrec.Record, names ...string) map[string]string {
	t.Helper()
	on := map[string]string{}
	for _, m := range pythonModels(rec) {
		if !slices.Contains(names, m.Worker) || m.Attempts > 1 {
			t.Errorf("model %s of run %s: worker %q, attempts %d", m.Name, rec.ID, m.Worker, m.Attempts)
		}
		on[m.Name] = m.Worker
	}
	if len(on) == 0 {
		t.Fatalf("run %s has no Python model", rec.ID)
	}
	return on
}

// shmDir is the shared-memory folder of a process of the fleet (see
// serveEnv).
func shmDir(p *serveProc) string { return filepath.Join(p.dataDir, "shm") }

// shmLeft lists what is under a shared-memory folder.
func shmLeft(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p == filepath.Join(dir, "spares") {
			// A worker's spares (flight.Spares): pages of fetches of
			// ended runs, nameless, that the worker keeps for its next
			// fetches (bounded; a restart and its exit remove them).
			return filepath.SkipDir
		}
		if err == nil && p != dir {
			out = append(out, strings.TrimPrefix(p, dir+string(filepath.Separator)))
		}
		return nil
	})
	return out
}

// awaitShmClean waits up to 10 s for the shared-memory folders of the
// control plane and of every live worker to hold nothing of a run.
func (fr *fleetRun) awaitShmClean(t *testing.T, after string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		left = left[:0]
		procs := map[string]*serveProc{"the control plane": fr.control}
		for n, w := range fr.workers {
			if w.running() {
				procs["worker "+n] = w
			}
		}
		for who, p := range procs {
			for _, f := range shmLeft(shmDir(p)) {
				left = append(left, who+": "+f)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			slices.Sort(left)
			t.Fatalf("10 s after %s, left in shared memory:\n  %s", after, strings.Join(left, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running reports whether the process has not exited.
func (p *serveProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// functionProcs lists the processes a worker started (its descendants)
// and those working in its shared-memory folder.
func functionProcs(w *serveProc) []procID {
	var out []procID
	for _, p := range descendants(w.Pid()) {
		if p.pid != w.Pid() {
			out = append(out, p)
		}
	}
	shm := shmDir(w)
	for _, p := range allProcs() {
		if p.pid != w.Pid() && !slices.ContainsFunc(out, func(q procID) bool { return q.pid == p.pid }) && p.mentions(shm) {
			out = append(out, p)
		}
	}
	return out
}

// runResult is what a run of the CLI printed, and its exit code.
type runResult struct {
	out, errOut string
	code        int
}

// startRun runs project on branch of the fleet in the background.
func (fr *fleetRun) startRun(project, branch string) <-chan runResult {
	done := make(chan runResult, 1)
	go func() {
		out, errOut, code := fr.lh(false, runArgs(project, branch)...)
		done <- runResult{out, errOut, code}
	}()
	return done
}

// awaitWorking waits for one of the named workers to run a function, and
// returns it; it fails t if the run (done) ends first.
func (fr *fleetRun) awaitWorking(t *testing.T, done <-chan runResult, names ...string) string {
	t.Helper()
	for {
		for _, n := range names {
			if len(functionProcs(fr.workers[n])) > 0 {
				return n
			}
		}
		select {
		case r := <-done:
			t.Fatalf("the run ended (exit %d) before one of %v ran a function:\n%s%s", r.code, names, r.out, r.errOut)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// head is the commit branch points at, on the fleet.
func (fr *fleetRun) head(t *testing.T, branch string) string {
	t.Helper()
	var b struct {
		Head string `json:"head"`
	}
	mustJSON(t, fr.must(t, false, "branch", "get", branch, "-O", "json"), &b)
	if b.Head == "" {
		t.Fatalf("branch %s has no head", branch)
	}
	return b.Head
}

// retryLine is the line a run prints when a model runs again because its
// worker was lost.
func retryLine(lost, model, again string) string {
	return fmt.Sprintf("[lakehouse] worker %s lost while running %s: running it again on %s (attempt 2 of 2)", lost, model, again)
}

// fanoutProject is one parent and six Python children, each reserving
// cpus cores (a worker's cores: one child at a time per worker, so the
// children spread over the fleet).
func fanoutProject(cpus int) map[string]string {
	var b strings.Builder
	b.WriteString(`import lakehouse
import pyarrow.compute as pc


@lakehouse.model()
def spread(data=lakehouse.Model("transactions", columns=["id", "usd", "country", "customer"])):
    return data.sort_by("id")
`)
	children := map[string]string{
		"by_country":  `data.group_by("country").aggregate([("usd", "sum"), ("id", "count")])`,
		"by_customer": `data.group_by("customer").aggregate([("usd", "sum"), ("usd", "max")])`,
		"big":         `data.filter(pc.greater(data["usd"], 100))`,
		"small":       `data.filter(pc.less_equal(data["usd"], 10))`,
		"even":        `data.filter(pc.equal(pc.bit_wise_and(data["id"], 1), 0))`,
		"top":         `data.sort_by([("usd", "descending"), ("id", "ascending")]).slice(0, 25)`,
	}
	names := make([]string, 0, len(children))
	for n := range children {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, `

@lakehouse.model(materialization="REPLACE")
@lakehouse.resources(cpus=%d)
def %s(data=lakehouse.Model("spread")):
    return %s
`, cpus, n, children[n])
	}
	return map[string]string{
		"lakehouse.yml": "project:\n  name: fanout\ndefaults:\n  python: \"3.11\"\n  namespace: sales\n",
		"models.py":     b.String(),
	}
}

// fanoutChildren are the children of fanoutProject.
var fanoutChildren = []string{"big", "by_country", "by_customer", "even", "small", "top"}

// DAG of dagLayers layers of dagWidth small pyarrow models: each model of
// layer 0 reads the sample table, each later one reads the model of the
// same index in the layer before and up to two others (chosen by seed);
// the last layer is materialized.
const (
	dagLayers = 20
	dagWidth  = 10
)

func dagModel(layer, i int) string { return fmt.Sprintf("dag_%02d_%d", layer, i) }

// dagProject writes the DAG's project and returns its materialized
// tables.
func dagProject(seed uint64) (files map[string]string, tables []string) {
	rng := rand.New(rand.NewPCG(seed, 15))
	var b strings.Builder
	b.WriteString(`import lakehouse


def step(layer, i, *inputs):
    import pyarrow as pa
    import pyarrow.compute as pc

    v = inputs[0]["v"]
    for t in inputs[1:]:
        v = pc.add(v, t["v"])
    v = pc.add(pc.bit_wise_and(v, 0xFFFFF), layer * 10 + i)
    return pa.table({"id": inputs[0]["id"], "v": v})
`)
	for i := range dagWidth {
		fmt.Fprintf(&b, `

@lakehouse.model()
def %s(data=lakehouse.Model("transactions", columns=["id"])):
    import pyarrow.compute as pc

    t = data.sort_by("id")
    return t.append_column("v", pc.add(pc.multiply(t["id"], %d), %d))
`, dagModel(0, i), i+1, i)
	}
	for layer := 1; layer < dagLayers; layer++ {
		for i := range dagWidth {
			parents := []int{i}
			for _, j := range rng.Perm(dagWidth)[:rng.IntN(3)] {
				if j != i {
					parents = append(parents, j)
				}
			}
			var params, args []string
			for k, j := range parents {
				params = append(params, fmt.Sprintf("p%d=lakehouse.Model(%q)", k, dagModel(layer-1, j)))
				args = append(args, fmt.Sprintf("p%d", k))
			}
			decorator := "@lakehouse.model()"
			if layer == dagLayers-1 {
				decorator = `@lakehouse.model(materialization="REPLACE")`
				tables = append(tables, "sales."+dagModel(layer, i))
			}
			fmt.Fprintf(&b, "\n\n%s\ndef %s(%s):\n    return step(%d, %d, %s)\n",
				decorator, dagModel(layer, i), strings.Join(params, ", "), layer, i, strings.Join(args, ", "))
		}
	}
	return map[string]string{
		"lakehouse.yml": "project:\n  name: dag200\ndefaults:\n  python: \"3.11\"\n  namespace: sales\n",
		"models.py":     b.String(),
	}, tables
}

// TestFleetRuns: a control plane and three workers run the sample
// pipeline, a fan-out and a 200-function DAG; every Python model runs
// on a worker, the rows are the single node's, and nothing of a run is
// left in shared memory after it.
func TestFleetRuns(t *testing.T) {
	fr := newFleetRun(t, "w1", "w2", "w3")
	workers := []string{"w1", "w2", "w3"}
	var dag *runrec.Record

	// The first worker's --shm-reserve: its spares folder holds that
	// many bytes, allocated, before any run (given back when it stops:
	// the last subtest).
	t.Run("shm reserve", func(t *testing.T) {
		w := fr.workers[workers[0]]
		var size, allocated int64
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if size, allocated = reserved(t, w); size == testShmReserve && allocated >= size || time.Now().After(deadline) {
				break
			}
		}
		if size != testShmReserve || allocated < size {
			t.Fatalf("worker %s's spares hold %d bytes, %d allocated, want %d allocated", workers[0], size, allocated, testShmReserve)
		}
	})

	t.Run("sample pipeline", func(t *testing.T) {
		rec, _ := fr.runBoth(t, testdataDir(t, "pipelines", "sample"), "root.sample", "--param", "min_usd=10")
		placedOnWorkers(t, rec, workers...)
		fr.sameRows(t, "root.sample", "sales.usd_by_country", "sales.country_share")
		fr.awaitShmClean(t, "the sample pipeline")
	})

	t.Run("fan-out", func(t *testing.T) {
		cores := 0
		for _, w := range fr.fleet() {
			if cores == 0 || w.Cores < cores {
				cores = w.Cores
			}
		}
		rec, _ := fr.runBoth(t, writeRunProject(t, fanoutProject(cores)), "root.fanout")
		on := placedOnWorkers(t, rec, workers...)
		used := map[string]bool{}
		for _, c := range fanoutChildren {
			used[on[c]] = true
		}
		t.Logf("models by worker: %v", on)
		if len(used) < 2 {
			t.Errorf("the six children (%d cores each) ran on %v only: %v", cores, used, on)
		}
		tables := make([]string, len(fanoutChildren))
		for i, c := range fanoutChildren {
			tables[i] = "sales." + c
		}
		fr.sameRows(t, "root.fanout", tables...)
		fr.awaitShmClean(t, "the fan-out")
		// The workers' data planes (no TLS) handed the intermediates over
		// as files over HTTP, none with a DoGet.
		var overHTTP, doGets int
		for _, w := range fr.workers {
			m := scrape(t, w.HTTPAddr)
			overHTTP += counterOf(m, `lakehouse_requests_total{method="GetIntermediateHTTP"}`)
			doGets += counterOf(m, `lakehouse_requests_total{method="DoGetIntermediate"}`)
		}
		if overHTTP == 0 || doGets != 0 {
			t.Errorf("the workers handed %d intermediates over HTTP and %d with a DoGet, want some and none", overHTTP, doGets)
		}
	})

	t.Run("200-function DAG", func(t *testing.T) {
		files, tables := dagProject(1)
		rec, _ := fr.runBoth(t, writeRunProject(t, files), "root.dag")
		on := placedOnWorkers(t, rec, workers...)
		if n := len(pythonModels(rec)); n != dagLayers*dagWidth {
			t.Errorf("run %s: %d Python models, want %d", rec.ID, n, dagLayers*dagWidth)
		}
		count := map[string]int{}
		for _, w := range on {
			count[w]++
		}
		t.Logf("models by worker: %v", count)
		if len(count) < 2 {
			t.Errorf("the DAG ran on %v only", count)
		}
		fr.sameRows(t, "root.dag", tables...)
		fr.awaitShmClean(t, "the DAG")
		dag = rec
	})

	// Last: the fleet gets a worker that runs nothing (it takes the ticket
	// key).
	t.Run("intermediates a worker does not hold", func(t *testing.T) {
		if dag == nil {
			t.Fatal("the DAG did not run")
		}
		model := dagModel(0, 0)
		holder := ""
		for _, m := range pythonModels(dag) {
			if m.Name == model {
				holder = m.Worker
			}
		}
		if fr.workers[holder] == nil {
			t.Fatalf("model %s ran on %q, not a worker", model, holder)
		}
		key := fr.ticketKey(t)
		ws := fr.fleet()
		other := map[string]string{"w1": "w2", "w2": "w3", "w3": "w1"}[holder]
		for _, tc := range []struct {
			name, worker string
			ticket       flight.IntermediateTicket
			msg          string
		}{
			{"an ended run's", holder, flight.IntermediateTicket{Run: dag.ID, Model: model, Worker: holder, Lease: ws[holder].Lease},
				"holds no output of model " + model},
			{"another worker's", other, flight.IntermediateTicket{Run: dag.ID, Model: model, Worker: holder, Lease: ws[holder].Lease},
				"is held by worker " + holder},
			{"an unknown run's", holder, flight.IntermediateTicket{Run: "0123456789abcdef", Model: model, Worker: holder, Lease: ws[holder].Lease},
				"holds no output of model " + model},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.ticket.Expires = time.Now().Add(time.Minute)
				tkt, err := flight.SignIntermediate(key, tc.ticket)
				if err != nil {
					t.Fatal(err)
				}
				err = doGet(t, fr.workers[tc.worker].hostPort(), tkt)
				if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("DoGet on %s: %v, want NotFound with %q", tc.worker, err, tc.msg)
				}
			})
		}
	})

	// A worker stopped gives its spares, the reserve with them, back.
	t.Run("stop gives the reserve back", func(t *testing.T) {
		w := fr.workers[workers[0]]
		if _, err := w.stop(30 * time.Second); err != nil {
			t.Fatalf("worker %s stopped with %v:\n%s", workers[0], err, w.out)
		}
		if _, err := os.Stat(filepath.Join(shmDir(w), "spares")); !os.IsNotExist(err) {
			t.Fatalf("worker %s left its spares folder: %v", workers[0], err)
		}
	})
}

// killProject is a short run: a parent, three children reading it, a
// grandchild reading two of them (the children's outputs change workers).
var killProject = map[string]string{
	"lakehouse.yml": "project:\n  name: killed\ndefaults:\n  python: \"3.11\"\n  namespace: sales\n",
	"models.py": `import lakehouse
import pyarrow.compute as pc


@lakehouse.model()
def base(data=lakehouse.Model("transactions", columns=["id", "usd", "country"])):
    return data.sort_by("id")


@lakehouse.model(materialization="REPLACE")
def cheap(data=lakehouse.Model("base")):
    return data.filter(pc.less(data["usd"], 50))


@lakehouse.model(materialization="REPLACE")
def dear(data=lakehouse.Model("base")):
    return data.filter(pc.greater_equal(data["usd"], 50))


@lakehouse.model()
def countries(data=lakehouse.Model("base")):
    return data.group_by("country").aggregate([("usd", "sum")])


@lakehouse.model(materialization="REPLACE")
def summary(a=lakehouse.Model("cheap"), b=lakehouse.Model("countries")):
    import pyarrow as pa

    return pa.table({"cheap": [a.num_rows], "countries": [b.num_rows]})
`,
}

// killTables are the tables killProject writes.
var killTables = []string{"sales.cheap", "sales.dear", "sales.summary"}

// Kill points of TestFleetWorkerKilled: envFleetKillPoints sets how many
// (30 by default), envFleetKillSeed the seed of their moments and victims.
const (
	envFleetKillPoints = "LAKEHOUSE_FLEET_KILL_POINTS"
	envFleetKillSeed   = "LAKEHOUSE_FLEET_KILL_SEED"
	fleetKillPoints    = 30
)

// TestFleetWorkerKilled kills a worker with SIGKILL at random moments of
// runs, preferably one running a function then: each run either
// completes, the models of the killed worker run again elsewhere, or
// fails with its target unchanged; nothing of the run is left in the
// shared memory of the live workers, nor any process of the killed one;
// the killed worker, restarted over the same data dir, removes its
// leftovers.
func TestFleetWorkerKilled(t *testing.T) {
	fr := newFleetRun(t, "w1", "w2", "w3")
	project := writeRunProject(t, killProject)
	const branch = "root.kill"
	fr.must(t, false, "branch", "create", branch, "--from-ref", "main")

	// A first run warms the workers; the second measures a run and gives
	// the rows of every later one.
	fr.must(t, false, runArgs(project, branch)...)
	started := time.Now()
	fr.must(t, false, runArgs(project, branch)...)
	took := time.Since(started)
	want := map[string]string{}
	for _, tb := range killTables {
		want[tb] = fr.must(t, false, "query", "SELECT * FROM "+tb+" ORDER BY ALL", "-O", "csv", "-r", branch)
	}

	points := killpoints.EnvCount(t, envFleetKillPoints, fleetKillPoints)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(envFleetKillSeed); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number", envFleetKillSeed, v)
		}
		seed = s
	}
	t.Logf("seed %d (%s=%d repeats it), %d kill points, a run takes %s", seed, envFleetKillSeed, seed, points, took.Round(time.Millisecond))
	rng := rand.New(rand.NewPCG(seed, 15))
	var succeeded, failed, retried, busy, leftovers int
	for k := range points {
		delay := time.Duration(rng.Int64N(int64(took) * 11 / 10))
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("kill point %d at %s (seed %d): %s", k, delay.Round(time.Millisecond), seed, fmt.Sprintf(format, args...))
		}
		before := fr.head(t, branch)
		done := fr.startRun(project, branch)
		time.Sleep(delay)

		// The victim: a worker running a function now, else any.
		names := []string{"w1", "w2", "w3"}
		var working []string
		for _, n := range names {
			if len(functionProcs(fr.workers[n])) > 0 {
				working = append(working, n)
			}
		}
		victim := names[rng.IntN(len(names))]
		if len(working) > 0 {
			victim = working[rng.IntN(len(working))]
			busy++
		}
		w := fr.workers[victim]
		procs := functionProcs(w)
		w.kill()
		r := <-done

		// Nothing of the killed worker runs on.
		for deadline := time.Now().Add(10 * time.Second); ; {
			var left []string
			for _, p := range procs {
				if p.alive() {
					left = append(left, fmt.Sprintf("%d (%s)", p.pid, p.comm()))
				}
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				fail("processes of the killed worker %s still running 10 s after its kill: %s", victim, strings.Join(left, ", "))
			}
			time.Sleep(50 * time.Millisecond)
		}

		rec := fr.record(t, false, r.out)
		after := fr.head(t, branch)
		switch {
		case r.code == 0:
			succeeded++
			if rec.Status != runrec.StatusSucceeded || rec.EndCommit != after {
				fail("run %s exited 0: status %s, end commit %s, %s at %s", rec.ID, rec.Status, rec.EndCommit, branch, after)
			}
			logs := r.errOut + fr.must(t, false, "runs", "logs", rec.ID)
			again := false
			for _, m := range pythonModels(rec) {
				switch {
				case m.Attempts > 2 || m.Worker == "":
					fail("model %s of run %s: worker %q, attempts %d", m.Name, rec.ID, m.Worker, m.Attempts)
				case m.Attempts == 2:
					again = true
					// Its worker was the killed one, or it could not
					// fetch an input the killed one held.
					lost := retryLine(victim, m.Name, m.Worker)
					failed := regexp.MustCompile(`\[lakehouse\] ` + m.Name + ` failed on worker w\d \(.*\): running it again on ` +
						m.Worker + ` \(attempt 2 of 2\)`).FindString(logs)
					if m.Worker == victim || (!strings.Contains(logs, lost) && failed == "") {
						fail("model %s ran again on %s: the run does not say %q:\n%s", m.Name, m.Worker, lost, logs)
					}
					if failed != "" {
						t.Logf("kill point %d, %s killed: %s", k, victim, failed)
					}
				}
			}
			if again {
				retried++
			}
			for _, tb := range killTables {
				if got := fr.must(t, false, "query", "SELECT * FROM "+tb+" ORDER BY ALL", "-O", "csv", "-r", branch); got != want[tb] {
					fail("%s after run %s:\n%s\nwant\n%s", tb, rec.ID, got, want[tb])
				}
			}
		default:
			failed++
			if after != before || rec.Status != runrec.StatusFailed {
				fail("run %s exited %d (status %s): %s moved from %s to %s\n%s", rec.ID, r.code, rec.Status, branch, before, after, r.errOut)
			}
		}

		// The killed worker comes back over its data dir, and removes
		// what its killed self left in shared memory.
		if len(shmLeft(shmDir(w))) > 0 {
			leftovers++
		}
		old := fr.fleet()[victim].Epoch
		fr.startWorker(victim)
		fr.await(victim+" back", func(ws map[string]fleet.WorkerInfo) bool {
			return ws[victim].State == fleet.StateAlive && ws[victim].Epoch > old
		})
		fr.awaitShmClean(t, fmt.Sprintf("kill point %d (seed %d, %s killed)", k, seed, victim))
		// ... and the scratch folders its functions had (process
		// launcher), which no reaper of a run removes.
		if left, _ := filepath.Glob(filepath.Join(os.TempDir(), process.ScratchPrefix(w.Pid())+"*")); len(left) > 0 {
			fail("kill point %d: the restarted %s left the scratch folders of its killed self: %v", k, victim, left)
		}
	}
	t.Logf("%d runs completed (%d through a retry), %d failed with their target unchanged; %d kills hit a worker running a function, %d left files a restart removed",
		succeeded, retried, failed, busy, leftovers)
	if retried == 0 && busy > 0 {
		t.Errorf("no run completed through a retry in %d kills of a worker running a function", busy)
	}
	if leftovers == 0 && busy > 0 {
		t.Errorf("no killed worker left files in its shared-memory folder: the check that a restart removes them checked nothing")
	}

	// A model whose worker is lost on each of its attempts (retries 1):
	// the run fails, its target unchanged.
	t.Run("lost twice", func(t *testing.T) {
		before := fr.head(t, branch)
		done := fr.startRun(writeRunProject(t, slowProject), branch)
		first := fr.awaitWorking(t, done, "w1", "w2", "w3")
		fr.workers[first].kill()
		var rest []string
		for _, n := range []string{"w1", "w2", "w3"} {
			if n != first {
				rest = append(rest, n)
			}
		}
		second := fr.awaitWorking(t, done, rest...)
		fr.workers[second].kill()
		r := <-done
		rec := fr.record(t, false, r.out)
		logs := r.errOut + fr.must(t, false, "runs", "logs", rec.ID)
		if r.code == 0 || rec.Status != runrec.StatusFailed || !strings.Contains(logs, retryLine(first, "slow", second)) {
			t.Errorf("run %s: exit %d, status %s; its lines:\n%s", rec.ID, r.code, rec.Status, logs)
		}
		if after := fr.head(t, branch); after != before {
			t.Errorf("%s moved from %s to %s", branch, before, after)
		}
		for _, n := range []string{first, second} {
			fr.startWorker(n)
		}
		fr.await("both back", alive("w1", "w2", "w3"))
		fr.awaitShmClean(t, "the failed run")
	})
}

// slowProject is a model that sleeps longer than the control plane
// waits for a silent worker (testWorkerTimeout).
var slowProject = map[string]string{
	"lakehouse.yml": "project:\n  name: slow\ndefaults:\n  python: \"3.11\"\n  namespace: sales\n",
	"models.py": `import lakehouse


@lakehouse.model(materialization="REPLACE")
def slow(data=lakehouse.Model("transactions", columns=["id", "usd"])):
    import time

    time.sleep(5)
    return data.sort_by("id")
`,
}

// TestFleetWorkerPartitioned stops the worker running a model (SIGSTOP)
// longer than the control plane's timeout, then lets it go on (SIGCONT):
// once the model runs again on the other worker, or as soon as the
// control plane dropped the stopped one. The run completes through a
// retry and its target gets the run's commits once, or it fails with
// its target unchanged; what the stopped worker sends late changes
// nothing.
func TestFleetWorkerPartitioned(t *testing.T) {
	fr := newFleetRun(t, "w1", "w2")
	project := writeRunProject(t, slowProject)
	for i, tc := range []struct {
		name string
		// untilRetried: the stopped worker goes on once the model runs
		// on the other one (the run must complete); else at once.
		untilRetried bool
	}{
		{"SIGCONT once the model runs elsewhere", true},
		{"SIGCONT once the worker is lost", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			branch := fmt.Sprintf("root.part%d", i)
			fr.must(t, false, "branch", "create", branch, "--from-ref", "main")
			before := fr.head(t, branch)
			started := time.Now()
			done := fr.startRun(project, branch)
			victim := fr.awaitWorking(t, done, "w1", "w2")
			other := map[string]string{"w1": "w2", "w2": "w1"}[victim]
			w := fr.workers[victim]
			old := fr.fleet()[victim]
			if err := syscall.Kill(w.Pid(), syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			fr.await(victim+" lost", func(ws map[string]fleet.WorkerInfo) bool { return ws[victim].State == fleet.StateLost })
			if tc.untilRetried {
				fr.awaitWorking(t, done, other)
			}
			if err := syscall.Kill(w.Pid(), syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s stopped for %s", victim, time.Since(stopped).Round(time.Millisecond))
			r := <-done
			rec := fr.record(t, false, r.out)
			for _, m := range pythonModels(rec) {
				t.Logf("the run took %s, exit %d: %s %s on %q, attempts %d", time.Since(started).Round(time.Millisecond), r.code, m.Name, m.State, m.Worker, m.Attempts)
			}
			logs := r.errOut + fr.must(t, false, "runs", "logs", rec.ID)

			// The stopped worker registers again; what it sends under its
			// dead lease until its model ends changes nothing.
			fr.await(victim+" registered again", func(ws map[string]fleet.WorkerInfo) bool {
				return ws[victim].State == fleet.StateAlive && ws[victim].Epoch > old.Epoch
			})
			time.Sleep(time.Until(stopped.Add(6 * time.Second)))
			switch {
			case r.code == 0:
				slow := pythonModels(rec)[0]
				if slow.Name != "slow" || slow.Attempts != 2 || (tc.untilRetried && slow.Worker != other) ||
					!strings.Contains(logs, retryLine(victim, "slow", slow.Worker)) {
					t.Errorf("model %s: worker %q, attempts %d; the run's lines:\n%s", slow.Name, slow.Worker, slow.Attempts, logs)
				}
				fr.committedOnce(t, branch, before, rec, "slow", map[string]string{"slow": "sales.slow"})
				if got := fr.must(t, false, "query", "SELECT count(*) AS n FROM sales.slow", "-O", "csv", "-r", branch); got != "n\n400\n" {
					t.Errorf("sales.slow: %q", got)
				}
			case tc.untilRetried:
				t.Fatalf("run: exit %d\n%s%s\ncontrol plane:\n%s", r.code, r.out, r.errOut, fr.control.out)
			default:
				t.Logf("the run failed: %s", rec.Error)
				if h := fr.head(t, branch); h != before || rec.Status != runrec.StatusFailed {
					t.Errorf("run %s exited %d (status %s): %s moved from %s to %s", rec.ID, r.code, rec.Status, branch, before, h)
				}
			}
			fr.awaitShmClean(t, "the run")
		})
	}
}

// committedOnce checks that branch moved from before to the end of run
// rec by the run's commits only, each once: one per model writing a table
// (tables, by model), and the merge.
func (fr *fleetRun) committedOnce(t *testing.T, branch, before string, rec *runrec.Record, project string, tables map[string]string) {
	t.Helper()
	if h := fr.head(t, branch); h != rec.EndCommit {
		t.Errorf("%s at %s after the run, which ended at %s", branch, h, rec.EndCommit)
	}
	var commits []struct {
		ID      string `json:"id"`
		Message string `json:"message"`
		RunID   string `json:"run_id"`
	}
	mustJSON(t, fr.must(t, false, "log", branch, "-n", "50", "-O", "json"), &commits)
	seen := map[string]int{}
	for _, c := range commits {
		if c.ID == before {
			break
		}
		if c.RunID != rec.ID {
			t.Errorf("commit %s on %s is not of run %s: %s", c.ID, branch, rec.ID, c.Message)
		}
		seen[c.Message]++
	}
	want := []string{"run " + rec.ID + ": " + project}
	for m, tb := range tables {
		want = append(want, fmt.Sprintf("run %s: %s %s (REPLACE)", rec.ID, m, tb))
	}
	for _, msg := range want {
		if seen[msg] != 1 {
			t.Errorf("%q committed %d times on %s, want once; the commits of the run: %v", msg, seen[msg], branch, seen)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("the commits of run %s on %s: %v, want %v", rec.ID, branch, seen, want)
	}
}

// counterOf is the value of counter name (with its labels) in the lines
// scrape returns, 0 if it is not there.
func counterOf(metrics, name string) int {
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+" "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
