package fleetlaunch

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/launchertest"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// models is the code folder of the tests' run.
const models = `import time
import pyarrow as pa
import pyarrow.compute as pc


def double(data, factor=2):
    print("rows in:", data.num_rows, flush=True)
    return pa.table({"x": pc.multiply(data["x"], factor)})


def plus(data, n=1):
    return pa.table({"x": pc.add(data["x"], n)})


def add(data, other):
    return pa.table({"x": pc.add(data["x"], other["x"])})


def fail(data):
    helper()


def helper():
    raise ValueError("something is wrong with the data")


def slow(data):
    print("sleeping", flush=True)
    time.sleep(3600)


def check(data):
    return data.num_rows > 0
`

// joined is a data plane's identity: a worker under its lease, or the
// control plane (fleet.ControlName, lease "").
type joined struct {
	name, lease string
	key         []byte
}

func (j *joined) Ticket() (string, string, []byte, bool) { return j.name, j.lease, j.key, true }

func (j *joined) RunPlaced(context.Context, flight.PlacedQuery) (array.RecordReader, func() error, error) {
	return nil, nil, errdefs.New(errdefs.ErrFailedPrecondition, "no placed queries in this test")
}

// dataPlane serves held on a loopback port.
type dataPlane struct {
	addr    string
	metrics *flight.Metrics
}

func serveDataPlane(t testing.TB, j *joined, held *flight.Intermediates) *dataPlane {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := flight.NewMetrics()
	srv := flight.NewServer(flight.Options{Version: "test", Role: "worker", Placed: j, Intermediates: held, Metrics: m})
	done := make(chan struct{})
	go func() { srv.Serve(lis); close(done) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return &dataPlane{addr: lis.Addr().String(), metrics: m}
}

// doGetRE matches the requests for intermediates: DoGets, and GETs over
// HTTP (a data plane without TLS).
var doGetRE = regexp.MustCompile(`lakehouse_requests_total\{method="(?:DoGetIntermediate|GetIntermediateHTTP)"\} (\d+)`)

// doGets is how many intermediates the data plane handed over.
func (d *dataPlane) doGets(t *testing.T) int {
	var b strings.Builder
	d.metrics.WriteText(&b)
	total := 0
	for _, m := range doGetRE.FindAllStringSubmatch(b.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}

type testWorker struct {
	name, lease string
	shm         string
	ex          *Executor
	spares      *flight.Spares
	plane       *dataPlane
	dead        bool
	// lose: the worker is lost once a task it runs has printed a line.
	lose bool
}

// testFleet is a control plane and its workers in one process; the
// fake Assigner calls the executors directly.
type testFleet struct {
	t       testing.TB
	opts    fleetOptions
	key     []byte
	ctl     *flight.Intermediates
	ctlDP   *dataPlane
	env     *envcache.Environment
	code    string // the run's code folder
	dir     string // the control plane's /dev/shm folder of the run
	run     string
	l       *Launcher
	mu      sync.Mutex
	workers map[string]*testWorker
	order   []string
}

func shm(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// fleetOptions shape a test fleet beyond its workers' names.
type fleetOptions struct {
	// cores each worker advertises (default 1).
	cores int
	// launcher wraps the workers' process launcher (nil: as is).
	launcher func(function.Launcher) function.Launcher
	// assigned sees each task as the control plane hands it over, before
	// the worker takes it (nil: nothing).
	assigned func(worker string, task json.RawMessage)
}

// newTestFleet is a fleet of one-core workers named names.
func newTestFleet(t testing.TB, names ...string) *testFleet {
	t.Helper()
	return newFleet(t, fleetOptions{}, names...)
}

func newFleet(t testing.TB, opts fleetOptions, names ...string) *testFleet {
	t.Helper()
	if opts.cores == 0 {
		opts.cores = 1
	}
	f := &testFleet{t: t, opts: opts, key: []byte("fleet test key"), ctl: flight.NewIntermediates(), workers: map[string]*testWorker{},
		run: runrec.NewID(time.Now())}
	f.ctlDP = serveDataPlane(t, &joined{name: fleet.ControlName, key: f.key}, f.ctl)
	f.env = launchertest.Env(t)
	f.code = t.TempDir()
	if err := os.WriteFile(filepath.Join(f.code, "models.py"), []byte(models), 0o644); err != nil {
		t.Fatal(err)
	}
	f.dir = shm(t, "lakehouse-fleetlaunch-ctl-")
	cache := envtest.Shared(t)
	pl := process.New(process.Config{})
	t.Cleanup(func() { pl.Close() })
	var launcher function.Launcher = pl
	if opts.launcher != nil {
		launcher = opts.launcher(pl)
	}
	for i, name := range names {
		w := &testWorker{name: name, lease: fmt.Sprintf("lease-%s-%d", name, i), shm: shm(t, "lakehouse-fleetlaunch-"+name+"-")}
		held := flight.NewIntermediates()
		w.plane = serveDataPlane(t, &joined{name: name, lease: w.lease, key: f.key}, held)
		// The fetched inputs of an ended run become spares (NewSpares
		// empties the folder it is given, so it gets one of its own).
		sp, err := flight.NewSpares(filepath.Join(shm(t, "lakehouse-fleetlaunch-spares-"+name+"-"), "spares"), 1<<30, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		w.spares = sp
		ex, err := NewExecutor(ExecutorConfig{Launcher: launcher, Envs: cache, ShmDir: w.shm, Intermediates: held, ControlAddr: f.ctlDP.addr,
			Fetch: flight.FetchOptions{Spares: sp}})
		if err != nil {
			t.Fatal(err)
		}
		w.ex = ex
		f.workers[name] = w
		f.order = append(f.order, name)
	}
	l, err := New(Config{Assigner: f, Workers: f.alive, TicketKey: f.key, Intermediates: f.ctl, Refresh: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.l = l
	t.Cleanup(func() {
		l.EndRun(f.run)
		l.Close()
		for _, w := range f.workers {
			if w.ex.Running() != 0 {
				t.Errorf("worker %s still runs %d tasks", w.name, w.ex.Running())
			}
			if ents, _ := os.ReadDir(w.shm); len(ents) != 0 {
				t.Errorf("worker %s left %d entries in its /dev/shm folder after the run", w.name, len(ents))
			}
		}
	})
	return f
}

// alive is fleet.Registry.Alive.
func (f *testFleet) alive(context.Context) []fleet.WorkerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fleet.WorkerInfo
	for _, name := range f.order {
		w := f.workers[name]
		if w.dead {
			continue
		}
		out = append(out, fleet.WorkerInfo{
			Registration: fleet.Registration{Name: name, Addr: w.plane.addr, Cores: f.opts.cores, MemoryBytes: 8 << 30, ShmFreeBytes: 1 << 30, Launcher: "process"},
			State:        fleet.StateAlive, Lease: w.lease,
		})
	}
	return out
}

func (f *testFleet) Assign(ctx context.Context, worker, lease string, task json.RawMessage, onEvent func(json.RawMessage)) (json.RawMessage, error) {
	f.mu.Lock()
	w := f.workers[worker]
	ok := w != nil && !w.dead && w.lease == lease
	lose := ok && w.lose
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("worker %s: %w", worker, fleet.ErrWorkerLost)
	}
	if f.opts.assigned != nil {
		f.opts.assigned(worker, task)
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	lost := false
	emit := func(ev json.RawMessage) {
		mu.Lock()
		defer mu.Unlock()
		if lose && !lost {
			lost = true
			f.mu.Lock()
			w.dead = true
			f.mu.Unlock()
			cancel()
			return
		}
		onEvent(ev)
	}
	res, err := w.ex.Handle(hctx, task, emit)
	mu.Lock()
	defer mu.Unlock()
	if lost {
		return nil, fmt.Errorf("worker %s: stream broke: %w", worker, fleet.ErrWorkerLost)
	}
	return res, err
}

func (f *testFleet) Broadcast(note json.RawMessage) {
	for _, w := range f.workers {
		w.ex.Note(note)
	}
}

// write makes a control plane input of the run (a scan).
func (f *testFleet) write(name string, xs ...int64) string {
	p := filepath.Join(f.dir, name+".arrow")
	launchertest.WriteInts(f.t, p, xs...)
	return p
}

// call runs fn of models.py as model, with inputs hard-linked from
// files of the run as the pipeline does, and renames its output to the
// run's file of model.
func (f *testFleet) call(ctx context.Context, model, fn string, inputs map[string]string, params map[string]any) (*function.Result, string, error) {
	inv := filepath.Join(f.dir, "inv-"+model)
	if err := os.MkdirAll(inv, 0o755); err != nil {
		f.t.Fatal(err)
	}
	defer os.RemoveAll(inv)
	i := function.Invocation{Model: model, Run: f.run, Env: f.env, ModulePath: filepath.Join(f.code, "models.py"), Function: fn,
		Params: params, DataDir: inv, Output: filepath.Join(inv, "output.arrow")}
	for arg, p := range inputs {
		in := filepath.Join(inv, "in-"+arg+".arrow")
		if err := os.Link(p, in); err != nil {
			f.t.Fatal(err)
		}
		i.Inputs = append(i.Inputs, function.Input{Arg: arg, Path: in})
	}
	res, err := f.l.Launch(ctx, i)
	if err != nil {
		return nil, "", err
	}
	out := filepath.Join(f.dir, model+".arrow")
	if err := os.Rename(res.Output, out); err != nil {
		f.t.Fatal(err)
	}
	return res, out, nil
}
