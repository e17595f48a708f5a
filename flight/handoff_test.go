package flight

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// joinedWorker is the PlacedQueries of a worker joined as name under
// lease; Ticket waits for gate when it is set (a slow worker).
type joinedWorker struct {
	name, lease string
	key         []byte
	gate        chan struct{}
}

func (w *joinedWorker) Ticket() (string, string, []byte, bool) {
	if w.gate != nil {
		<-w.gate
	}
	return w.name, w.lease, w.key, w.name != ""
}

func (w *joinedWorker) RunPlaced(context.Context, PlacedQuery) (array.RecordReader, func() error, error) {
	return nil, nil, errdefs.New(errdefs.ErrFailedPrecondition, "no placed queries in this test")
}

// handoffWorker is a worker's data plane on a loopback port.
type handoffWorker struct {
	addr    string
	held    *Intermediates
	metrics *Metrics
}

func serveHandoffWorker(t testing.TB, w *joinedWorker) *handoffWorker {
	t.Helper()
	hw := &handoffWorker{held: NewIntermediates(), metrics: NewMetrics()}
	_, _, hw.addr = serveTest(t, Options{Version: "v9", Role: "worker", Placed: w, Intermediates: hw.held, Metrics: hw.metrics}, DialOptions{})
	return hw
}

// doGets is how many intermediates the worker was asked for, by DoGet
// and over HTTP.
func (hw *handoffWorker) doGets() int64 {
	hw.metrics.mu.Lock()
	defer hw.metrics.mu.Unlock()
	return hw.metrics.requests["DoGetIntermediate"] + hw.metrics.requests["GetIntermediateHTTP"]
}

// transports are the two ways a data plane hands an intermediate over:
// the prefix of its location.
var transports = []string{"grpc://", "http://"}

// shmDir is a folder in /dev/shm (else the temp dir) that the test
// removes, after checking that no fetch left a temporary file in it.
func shmDir(t testing.TB) string {
	t.Helper()
	root := "/dev/shm"
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		root = ""
	}
	dir, err := os.MkdirTemp(root, "lakehouse-handoff-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer os.RemoveAll(dir)
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".arrow") {
				t.Errorf("left in %s: %s", dir, e.Name())
			}
		}
	})
	return dir
}

// handoffSchema has nulls in every column, strings and a dictionary.
var handoffSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "cat", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}, Nullable: true},
}, nil)

var handoffBatches = []string{
	`[{"id": 1, "name": "Ada", "cat": "x"}, {"id": null, "name": null, "cat": null},
	  {"id": 3, "name": "", "cat": "y"}, {"id": -4, "name": "città ✓", "cat": "x"}]`,
	// A file holds one dictionary per column: this batch's is the same.
	`[{"id": 5, "name": "a name longer than twelve bytes", "cat": "x"}, {"id": 6, "name": null, "cat": "y"},
	  {"id": 7, "name": "z", "cat": null}]`,
}

// writeIntermediate writes the batches (JSON rows of schema) as an IPC
// file, as a pipeline writes a model's output.
func writeIntermediate(t testing.TB, path string, schema *arrow.Schema, batches []string) []arrow.RecordBatch {
	t.Helper()
	var recs []arrow.RecordBatch
	for _, js := range batches {
		rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rec.Release)
		recs = append(recs, rec)
	}
	r, err := array.NewRecordReader(schema, recs)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if _, err := arrowipc.Write(context.Background(), path, r); err != nil {
		t.Fatal(err)
	}
	return recs
}

// holdParent writes batches (JSON rows of schema) as the output of model
// parent of run r1 on worker a (joined as a, lease la) in a new folder of
// /dev/shm: its path, its batches and a ticket of it.
func holdParent(t testing.TB, a *handoffWorker, key []byte, schema *arrow.Schema, batches []string) (string, []arrow.RecordBatch, []byte) {
	t.Helper()
	src := filepath.Join(shmDir(t), "out.arrow")
	want := writeIntermediate(t, src, schema, batches)
	a.held.Register("r1", "parent", src)
	tkt, err := SignIntermediate(key, IntermediateTicket{Run: "r1", Model: "parent", Worker: "a", Lease: "la",
		Expires: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return src, want, tkt
}

// readIntermediate reads every batch of an IPC file, detached from it.
func readIntermediate(t testing.TB, path string) (recs []arrow.RecordBatch, fingerprint string) {
	t.Helper()
	f, err := arrowipc.Open(path, arrowipc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fp, _, err := f.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.NumBatches() {
		rec, err := f.Batch(i)
		if err != nil {
			t.Fatal(err)
		}
		cols := make([]arrow.Array, rec.NumCols())
		for j, c := range rec.Columns() {
			if cols[j], err = f.Detach(c, memory.DefaultAllocator); err != nil {
				t.Fatal(err)
			}
		}
		out := array.NewRecordBatch(rec.Schema(), cols, rec.NumRows())
		for _, c := range cols {
			c.Release()
		}
		rec.Release()
		t.Cleanup(out.Release)
		recs = append(recs, out)
	}
	return recs, fp
}

// TestHandoff: an intermediate on worker A is read on worker B into a
// local file holding the same table, batch for batch: plain columns
// (streamed from A's mapping) and a dictionary column.
func TestHandoff(t *testing.T) {
	key := []byte("fleet key")
	for _, tc := range []struct {
		name    string
		schema  *arrow.Schema
		batches []string
	}{
		{"plain", arrow.NewSchema(handoffSchema.Fields()[:2], nil), []string{
			`[{"id": 1, "name": "Ada"}, {"id": null, "name": null}, {"id": 3, "name": ""}]`,
			`[{"id": 4, "name": "città ✓"}]`,
		}},
		{"dictionary", handoffSchema, handoffBatches},
		{"empty", handoffSchema, nil},
	} {
		for _, tr := range transports {
			t.Run(tc.name+"/"+strings.TrimSuffix(tr, "://"), func(t *testing.T) {
				testHandoff(t, tr, key, tc.schema, tc.batches)
			})
		}
	}
}

func testHandoff(t *testing.T, transport string, key []byte, schema *arrow.Schema, batches []string) {
	a := serveHandoffWorker(t, &joinedWorker{name: "a", lease: "la", key: key})
	src, want, tkt := holdParent(t, a, key, schema, batches)
	dst := filepath.Join(filepath.Dir(src), "in.arrow")
	if err := FetchIntermediate(context.Background(), transport+a.addr, tkt, dst, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	got, gotFP := readIntermediate(t, dst)
	_, wantFP := readIntermediate(t, src)
	if len(got) != len(want) || gotFP != wantFP {
		t.Fatalf("%d batches (fingerprint %s), want %d (%s)", len(got), gotFP, len(want), wantFP)
	}
	for i := range want {
		if !got[i].Schema().Equal(want[i].Schema()) || !array.RecordEqual(got[i], want[i]) {
			t.Fatalf("batch %d:\n%v\nwant\n%v", i, got[i], want[i])
		}
	}
	if n := a.doGets(); n != 1 {
		t.Fatalf("%d DoGets", n)
	}
	// A second fetch (another worker's) streams from the mapping
	// the first left with the registry, which unmaps it once the
	// output is forgotten.
	dst2 := filepath.Join(filepath.Dir(src), "in2.arrow")
	if err := FetchIntermediate(context.Background(), transport+a.addr, tkt, dst2, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, fp := readIntermediate(t, dst2); fp != wantFP {
		t.Fatalf("second fetch: fingerprint %s, want %s", fp, wantFP)
	}
	a.held.Forget("r1", "parent")
	if runtime.GOOS == "linux" {
		waitUnmapped(t, src)
	}
}

// waitUnmapped waits until no mapping of the process is of path: the
// worker unmaps a file once gRPC has written its batches.
func waitUnmapped(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(maps), path) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still mapped", path)
		}
	}
}

// TestHandoffRefused: a ticket the worker does not honour fails the
// fetch with its class, and leaves nothing at the destination.
func TestHandoffRefused(t *testing.T) {
	key := []byte("fleet key")
	a := serveHandoffWorker(t, &joinedWorker{name: "a", lease: "la", key: key})
	notJoined := serveHandoffWorker(t, &joinedWorker{key: key})
	// A server that is not a worker holds no intermediates.
	_, _, controlAddr := serveTest(t, Options{Version: "v9", Role: "control"}, DialOptions{})
	src, _, _ := holdParent(t, a, key, handoffSchema, handoffBatches)
	dir := filepath.Dir(src)
	a.held.Register("r2", "parent", src)
	a.held.ForgetRun("r2")
	a.held.Register("r1", "gone", filepath.Join(dir, "gone.arrow"))
	a.held.Register("r1", "forgotten", src)
	a.held.Forget("r1", "forgotten")

	valid := IntermediateTicket{Run: "r1", Model: "parent", Worker: "a", Lease: "la", Expires: time.Now().Add(time.Minute)}
	sign := func(key []byte, edit func(*IntermediateTicket)) []byte {
		it := valid
		if edit != nil {
			edit(&it)
		}
		tkt, err := SignIntermediate(key, it)
		if err != nil {
			t.Fatal(err)
		}
		return tkt
	}
	placed, err := SignPlaced(key, PlacedQuery{Worker: "a", Lease: "la", Expires: valid.Expires})
	if err != nil {
		t.Fatal(err)
	}
	// A placed query's body and signature presented as an intermediate.
	var pt placedTicket
	if err := json.Unmarshal(placed, &pt); err != nil {
		t.Fatal(err)
	}
	replayed, err := json.Marshal(intermediateTicket{Intermediate: &signedIntermediate{Body: pt.Placed, Sig: pt.Sig}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		addr   string
		ticket []byte
		class  error
		msg    string
	}{
		{"forged", a.addr, sign([]byte("another key"), nil), errdefs.ErrPermissionDenied, "not signed by this worker's control plane"},
		{"unsigned", a.addr, []byte(`{"intermediate":{"body":{"kind":"intermediate"},"sig":""}}`), errdefs.ErrPermissionDenied, "not signed"},
		{"placed query's signature", a.addr, replayed, errdefs.ErrPermissionDenied, "not signed"},
		{"expired", a.addr, sign(key, func(it *IntermediateTicket) { it.Expires = time.Now().Add(-time.Second) }), errdefs.ErrNotFound, "expired"},
		{"other worker's", a.addr, sign(key, func(it *IntermediateTicket) { it.Worker = "b" }), errdefs.ErrNotFound, "held by worker b, and this is a"},
		{"earlier lease", a.addr, sign(key, func(it *IntermediateTicket) { it.Lease = "l0" }), errdefs.ErrNotFound, "earlier registration of worker a"},
		{"unknown model", a.addr, sign(key, func(it *IntermediateTicket) { it.Model = "child" }), errdefs.ErrNotFound, "holds no output of model child of run r1"},
		{"forgotten", a.addr, sign(key, func(it *IntermediateTicket) { it.Model = "forgotten" }), errdefs.ErrNotFound, "holds no output"},
		{"run ended", a.addr, sign(key, func(it *IntermediateTicket) { it.Run = "r2" }), errdefs.ErrNotFound, "holds no output of model parent of run r2"},
		{"file gone", a.addr, sign(key, func(it *IntermediateTicket) { it.Model = "gone" }), errdefs.ErrNotFound, "is gone from worker a"},
		{"worker not joined", notJoined.addr, sign(key, nil), errdefs.ErrUnavailable, "has not joined"},
		{"not a worker", controlAddr, sign(key, nil), errdefs.ErrNotFound, "holds no intermediates"},
		{"nobody there", "127.0.0.1:1", sign(key, nil), errdefs.ErrUnavailable, "127.0.0.1:1"},
	}
	for _, tr := range transports {
		before := a.doGets()
		for _, tc := range cases {
			t.Run(strings.TrimSuffix(tr, "://")+"/"+tc.name, func(t *testing.T) {
				dst := filepath.Join(dir, "in.arrow")
				err := FetchIntermediate(context.Background(), tr+tc.addr, tc.ticket, dst, FetchOptions{})
				if !errdefs.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("got %v, want %s containing %q", err, errdefs.ClassName(tc.class), tc.msg)
				}
				if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a refused fetch left %s: %v", dst, err)
				}
			})
		}
		if n := a.doGets() - before; n != 10 {
			t.Fatalf("worker a counted %d requests for intermediates over %s, want 10", n, tr)
		}
	}
	for _, loc := range []string{"ftp://a", "http://a", "http://a:1/x", "grpc://a/b"} {
		err := FetchIntermediate(context.Background(), loc, sign(key, nil), filepath.Join(dir, "in.arrow"), FetchOptions{})
		if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "invalid") {
			t.Fatalf("location %s: got %v, want InvalidArgument", loc, err)
		}
	}
}

// TestHandoffSingleFlight: six children on one worker needing the same
// parent output fetch it once; a fetch every caller gave up on is stopped,
// and the next caller fetches anew.
func TestHandoffSingleFlight(t *testing.T) {
	for _, tr := range transports {
		t.Run(strings.TrimSuffix(tr, "://"), func(t *testing.T) { testHandoffSingleFlight(t, tr) })
	}
}

func testHandoffSingleFlight(t *testing.T, transport string) {
	key := []byte("fleet key")
	w := &joinedWorker{name: "a", lease: "la", key: key, gate: make(chan struct{})}
	a := serveHandoffWorker(t, w)
	src, want, tkt := holdParent(t, a, key, handoffSchema, handoffBatches)
	dst := filepath.Join(filepath.Dir(src), "in.arrow")
	fetch := func(ctx context.Context) error {
		return FetchIntermediate(ctx, transport+a.addr, tkt, dst, FetchOptions{})
	}
	waiting := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			fetches.mu.Lock()
			c := fetches.calls[dst]
			ok := c != nil && c.waiters == n
			fetches.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("never %d callers waiting", n)
			}
		}
	}
	// asked waits until the worker was asked n times.
	asked := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); a.doGets() != n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the worker was asked %d times, want %d", a.doGets(), n)
			}
		}
	}

	// Every caller gives up while the worker is slow: the fetch stops.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- fetch(ctx) }()
	waiting(1)
	asked(1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a fetch given up: %v", err)
	}

	// Six callers at once, one of which gives up: one DoGet, and the
	// file for the five others.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	quitter, quit := context.WithCancel(context.Background())
	for i := range errs {
		ctx := context.Background()
		if i == 0 {
			ctx = quitter
		}
		wg.Go(func() { errs[i] = fetch(ctx) })
	}
	waiting(6)
	asked(2)
	quit()
	waiting(5)
	close(w.gate) // the worker answers the abandoned fetch and this one
	wg.Wait()
	for i, err := range errs {
		if i == 0 && !errors.Is(err, context.Canceled) || i > 0 && err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if n := a.doGets(); n != 2 {
		t.Fatalf("%d DoGets: want the abandoned one and one for six callers", n)
	}
	got, _ := readIntermediate(t, dst)
	if len(got) != len(want) || !array.RecordEqual(got[0], want[0]) || !array.RecordEqual(got[1], want[1]) {
		t.Fatalf("fetched %v", got)
	}
	// Once there, the file is not fetched again.
	if err := fetch(context.Background()); err != nil || a.doGets() != 2 {
		t.Fatalf("a fetch of a file already there: %v, %d DoGets", err, a.doGets())
	}
	fetches.mu.Lock()
	defer fetches.mu.Unlock()
	if len(fetches.calls) != 0 {
		t.Fatalf("fetches left running: %v", fetches.calls)
	}
}

// TestIntermediatesShareMapping: handoffs of one output share the mapping
// the registry keeps; it is unmapped once forgotten and the last stream
// released it, and registering another path drops it. Run under -race
// with handoffs opening while others forget and register.
func TestIntermediatesShareMapping(t *testing.T) {
	dir := shmDir(t)
	p1, p2 := filepath.Join(dir, "a.arrow"), filepath.Join(dir, "b.arrow")
	writeIntermediate(t, p1, handoffSchema, handoffBatches)
	writeIntermediate(t, p2, handoffSchema, handoffBatches)
	r := NewIntermediates()
	if _, err := r.open("r1", "m"); !errors.Is(err, errGone) {
		t.Fatalf("an output not registered: %v", err)
	}
	r.Register("r1", "m", p1)
	m1, err := r.open("r1", "m")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := r.open("r1", "m")
	if err != nil {
		t.Fatal(err)
	}
	if m1 != m2 || m1.refs.Load() != 3 {
		t.Fatalf("two handoffs: mappings %p and %p, %d references (want one, 3)", m1, m2, m1.refs.Load())
	}
	r.Register("r1", "m", p1) // the same file again keeps it
	link := filepath.Join(dir, "link.arrow")
	if err := os.Link(p1, link); err != nil {
		t.Fatal(err)
	}
	r.Register("r1", "m", link) // so does another link of it
	if m1.refs.Load() != 3 {
		t.Fatalf("the same file registered again: %d references, want 3", m1.refs.Load())
	}
	r.Register("r1", "m", p2)
	if m1.refs.Load() != 2 {
		t.Fatalf("registered anew: %d references, want 2 (the streams')", m1.refs.Load())
	}
	// A new file renamed over the path (a model run again) drops the
	// mapping of the one before.
	r.Register("r1", "m", p1)
	m3, err := r.open("r1", "m")
	if err != nil {
		t.Fatal(err)
	}
	m3.release()
	again := filepath.Join(dir, "again.arrow")
	writeIntermediate(t, again, handoffSchema, handoffBatches[:1])
	if err := os.Rename(again, p1); err != nil {
		t.Fatal(err)
	}
	r.Register("r1", "m", p1)
	if m3.refs.Load() != 0 {
		t.Fatalf("a new file at the path: the old mapping has %d references", m3.refs.Load())
	}
	m4, err := r.open("r1", "m")
	if err != nil {
		t.Fatal(err)
	}
	if m4.f.NumBatches() != 1 {
		t.Fatalf("the new file at the path: %d batches handed over, want 1", m4.f.NumBatches())
	}
	m4.release()
	r.Register("r1", "m", p2)
	os.Remove(link)
	m1.release()
	m2.release()
	if runtime.GOOS == "linux" {
		waitUnmapped(t, p1)
	}
	if _, err := r.open("r1", "gone"); !errors.Is(err, errGone) {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var opened atomic.Int64
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				switch (i*7 + j) % 10 {
				case 0:
					r.Forget("r1", "m")
				case 1:
					r.ForgetRun("r1")
				case 2, 3, 4:
					r.Register("r1", "m", []string{p1, p2}[(i+j)%2])
				default:
					m, err := r.open("r1", "m")
					if errors.Is(err, errGone) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					// p1 now holds one batch, p2 two.
					if n := m.f.NumBatches(); n != 1 && n != 2 {
						t.Errorf("%d batches", n)
					}
					opened.Add(1)
					m.release()
				}
			}
		})
	}
	wg.Wait()
	if opened.Load() < 20 {
		t.Errorf("only %d handoffs opened their output", opened.Load())
	}
	r.ForgetRun("r1")
	if runtime.GOOS == "linux" {
		waitUnmapped(t, p1)
		waitUnmapped(t, p2)
	}
}
