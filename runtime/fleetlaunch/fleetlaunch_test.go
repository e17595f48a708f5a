package fleetlaunch

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/launchertest"
)

func TestChainOnOneWorker(t *testing.T) {
	f := newTestFleet(t, "w1", "w2")
	ctx := context.Background()
	nums := f.write("numbers", 1, 2, 3)
	parent, pout, err := f.call(ctx, "doubled", "double", map[string]string{"data": nums}, map[string]any{"factor": 2})
	if err != nil {
		t.Fatal(err)
	}
	child, cout, err := f.call(ctx, "plus_one", "plus", map[string]string{"data": pout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if parent.Worker == "" || child.Worker != parent.Worker || child.Attempts != 1 {
		t.Fatalf("parent on %q, child on %q (attempts %d): want the child on its parent's worker", parent.Worker, child.Worker, child.Attempts)
	}
	if got := launchertest.ReadColumn(t, cout, "x"); !slices.Equal(got, []int64{3, 5, 7}) {
		t.Fatalf("child output %v", got)
	}
	// The scan was fetched once from the control plane; the worker
	// handed over only the two outputs, to the control plane.
	if n := f.ctlDP.doGets(t); n != 1 {
		t.Errorf("control plane handed over %d intermediates, want 1", n)
	}
	if n := f.workers[parent.Worker].plane.doGets(t); n != 2 {
		t.Errorf("worker %s handed over %d intermediates, want 2 (the outputs, to the control plane)", parent.Worker, n)
	}
}

func TestFanOutFetchesOncePerWorker(t *testing.T) {
	f := newTestFleet(t, "w1", "w2", "w3")
	ctx := context.Background()
	nums := f.write("numbers", 1, 2, 3)
	parent, pout, err := f.call(ctx, "doubled", "double", map[string]string{"data": nums}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const children = 6
	var wg sync.WaitGroup
	on := make([]string, children)
	errs := make([]error, children)
	for i := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, out, err := f.call(ctx, "child"+string(rune('a'+i)), "plus", map[string]string{"data": pout}, map[string]any{"n": i})
			if err != nil {
				errs[i] = err
				return
			}
			on[i] = res.Worker
			if got := launchertest.ReadColumn(t, out, "x"); !slices.Equal(got, []int64{2 + int64(i), 4 + int64(i), 6 + int64(i)}) {
				errs[i] = errors.New("wrong output")
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	elsewhere := map[string]bool{}
	local := 0
	for _, w := range on {
		if w == parent.Worker {
			local++
		} else {
			elsewhere[w] = true
		}
	}
	if len(elsewhere) == 0 {
		t.Fatalf("every child ran on %s: the fan-out did not spread (%v)", parent.Worker, on)
	}
	// The parent's worker handed its output to the control plane, once to
	// each other worker, and its local children's outputs.
	want := 1 + len(elsewhere) + local
	if n := f.workers[parent.Worker].plane.doGets(t); n != want {
		t.Errorf("worker %s handed over %d intermediates, want %d (children on %v)", parent.Worker, n, want, on)
	}
	// Once the run ends, what the other workers fetched is kept as a
	// spare for their next fetches to write over.
	f.l.EndRun(f.run)
	for w := range elsewhere {
		if n := f.workers[w].spares.Bytes(); n == 0 {
			t.Errorf("worker %s keeps no spare of the parent's output it fetched", w)
		}
	}
}

func TestFunctionErrorComesBack(t *testing.T) {
	f := newTestFleet(t, "w1")
	nums := f.write("numbers", 1)
	_, _, err := f.call(context.Background(), "broken", "fail", map[string]string{"data": nums}, nil)
	var fe *function.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a function error", err)
	}
	if fe.Model != "broken" || fe.Kind != function.FailureException || fe.Type != "ValueError" ||
		!strings.Contains(fe.Message, "something is wrong") || !strings.Contains(fe.Traceback, "helper") {
		t.Fatalf("function error %+v", fe)
	}
}

func TestWorkerLostRunsAgainElsewhere(t *testing.T) {
	f := newTestFleet(t, "w1", "w2")
	nums := f.write("numbers", 1, 2)
	f.mu.Lock()
	f.workers["w1"].lose = true
	f.workers["w2"].dead = true // w1 takes it first
	f.mu.Unlock()
	var mu sync.Mutex
	var lines []string
	go func() {
		time.Sleep(300 * time.Millisecond)
		f.mu.Lock()
		f.workers["w2"].dead = false
		f.mu.Unlock()
	}()
	inv := filepath.Join(f.dir, "inv-doubled")
	os.MkdirAll(inv, 0o755)
	in := filepath.Join(inv, "in.arrow")
	if err := os.Link(nums, in); err != nil {
		t.Fatal(err)
	}
	res, err := f.l.Launch(context.Background(), function.Invocation{Model: "doubled", Run: f.run, Env: f.env,
		ModulePath: filepath.Join(f.code, "models.py"), Function: "double", DataDir: inv, Output: filepath.Join(inv, "out.arrow"),
		Inputs: []function.Input{{Arg: "data", Path: in}},
		Log: func(l function.LogLine) {
			mu.Lock()
			lines = append(lines, l.Text)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(inv)
	if res.Worker != "w2" || res.Attempts != 2 {
		t.Fatalf("ran on %s in %d attempts, want w2 in 2", res.Worker, res.Attempts)
	}
	if got := launchertest.ReadColumn(t, res.Output, "x"); !slices.Equal(got, []int64{2, 4}) {
		t.Fatalf("output %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(lines, func(s string) bool {
		return strings.Contains(s, "worker w1 lost while running doubled") && strings.Contains(s, "running it again on w2 (attempt 2 of 2)")
	}) {
		t.Fatalf("no retry line in the log: %q", lines)
	}
}

func TestOutOfRetries(t *testing.T) {
	f := newTestFleet(t, "w1", "w2")
	nums := f.write("numbers", 1, 2)
	f.mu.Lock()
	f.workers["w1"].lose = true
	f.workers["w2"].lose = true
	f.mu.Unlock()
	_, _, err := f.call(context.Background(), "doubled", "double", map[string]string{"data": nums}, nil)
	if !errdefs.Is(err, errdefs.ErrUnavailable) || !regexp.MustCompile(`w[12], w[12]`).MatchString(err.Error()) ||
		!strings.Contains(err.Error(), "model doubled") {
		t.Fatalf("got %v, want an error naming both workers and the model", err)
	}
}

func TestCancelStopsTheTask(t *testing.T) {
	f := newTestFleet(t, "w1")
	nums := f.write("numbers", 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inv := filepath.Join(f.dir, "inv-slow")
	os.MkdirAll(inv, 0o755)
	defer os.RemoveAll(inv)
	in := filepath.Join(inv, "in.arrow")
	if err := os.Link(nums, in); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.l.Launch(ctx, function.Invocation{Model: "slow", Run: f.run, Env: f.env,
			ModulePath: filepath.Join(f.code, "models.py"), Function: "slow", DataDir: inv, Output: filepath.Join(inv, "out.arrow"),
			Inputs: []function.Input{{Arg: "data", Path: in}},
			Log: func(l function.LogLine) {
				if l.Text == "sleeping" {
					cancel()
				}
			}})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the task did not stop")
	}
	w := f.workers["w1"]
	if n := w.ex.Running(); n != 0 {
		t.Fatalf("%d tasks still running", n)
	}
	// Only the run's fetched inputs are left (until the run ends): no
	// task folder.
	filepath.WalkDir(w.shm, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && regexp.MustCompile(`^t\d+$`).MatchString(d.Name()) {
			t.Errorf("task folder left: %s", p)
		}
		return nil
	})
}

func TestNoWorkerFits(t *testing.T) {
	f := newTestFleet(t, "w1")
	nums := f.write("numbers", 1)
	inv := filepath.Join(f.dir, "inv-big")
	os.MkdirAll(inv, 0o755)
	defer os.RemoveAll(inv)
	in := filepath.Join(inv, "in.arrow")
	os.Link(nums, in)
	_, err := f.l.Launch(context.Background(), function.Invocation{Model: "big", Run: f.run, Env: f.env, CPUs: 64,
		ModulePath: filepath.Join(f.code, "models.py"), Function: "double", DataDir: inv, Output: filepath.Join(inv, "out.arrow"),
		Inputs: []function.Input{{Arg: "data", Path: in}}})
	if !errdefs.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "64 CPUs") {
		t.Fatalf("got %v, want a clear error about 64 CPUs", err)
	}
}

func TestMalformedTask(t *testing.T) {
	f := newTestFleet(t, "w1")
	ex := f.workers["w1"].ex
	good, err := f.l.task(function.Invocation{Model: "m", Run: f.run, Env: f.env, ModulePath: filepath.Join(f.code, "models.py"), Function: "double"})
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(fn func(*Task)) json.RawMessage {
		t := good
		fn(&t)
		b, _ := json.Marshal(t)
		return b
	}
	for _, tc := range []struct {
		name string
		raw  json.RawMessage
		want string
	}{
		{"not json", json.RawMessage(`{"version": 1, "run": `), "malformed task"},
		{"empty", json.RawMessage(`{}`), "task version 0"},
		{"no function", mutate(func(t *Task) { t.Function = "" }), "no run, model or function"},
		{"module outside", mutate(func(t *Task) { t.Module = "../etc/passwd" }), "not a path inside the code folder"},
		{"bad python", mutate(func(t *Task) { t.Env.Python = "2" }), "invalid Python version"},
		{"input without source", mutate(func(t *Task) { t.Inputs = []TaskInput{{Arg: "data", Model: "x"}} }), "has no source"},
		{"code mismatch", mutate(func(t *Task) { t.Code.Hash = "00" }), "does not match its hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ex.Handle(context.Background(), tc.raw, func(json.RawMessage) {})
			if tc.name == "code mismatch" {
				// A bad code archive is the task's failure, sent back.
				res, herr := ex.Handle(context.Background(), tc.raw, func(json.RawMessage) {})
				var r TaskResult
				if herr != nil || json.Unmarshal(res, &r) != nil || r.Error == nil || !strings.Contains(r.Error.Message, tc.want) {
					t.Fatalf("got %s, %v", res, herr)
				}
				return
			}
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want invalid argument with %q", err, tc.want)
			}
		})
	}
}

// TestTaskOfEndedRun: a task of a run its control plane ended is refused
// and leaves nothing in the worker's /dev/shm folder (its fetches and
// code would otherwise outlive the run's cleanup).
func TestTaskOfEndedRun(t *testing.T) {
	f := newTestFleet(t, "w1")
	w := f.workers["w1"]
	task, err := f.l.task(function.Invocation{Model: "m", Run: f.run, Env: f.env, ModulePath: filepath.Join(f.code, "models.py"), Function: "double"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	f.l.EndRun(f.run)
	res, err := w.ex.Handle(context.Background(), raw, func(json.RawMessage) {})
	var r TaskResult
	if err != nil || json.Unmarshal(res, &r) != nil || r.Error == nil || !strings.Contains(r.Error.Message, "has ended") || r.Error.Retry {
		t.Fatalf("a task of an ended run: %s, %v", res, err)
	}
	if ents, _ := os.ReadDir(w.shm); len(ents) != 0 {
		t.Fatalf("the refused task left %d entries in the worker's folder", len(ents))
	}
}

// TestFusedChain: a chain's steps, their inputs linked after the launch
// (InputsLater), its steps and previews relayed to the control plane.
func TestFusedChain(t *testing.T) {
	f := newTestFleet(t, "w1")
	nums := f.write("numbers", 1, 2, 3)
	other := f.write("other", 10, 20, 30)
	inv := filepath.Join(f.dir, "inv-chain")
	os.MkdirAll(inv, 0o755)
	defer os.RemoveAll(inv)
	in, later := filepath.Join(inv, "s0-in0.arrow"), filepath.Join(inv, "s1-in0.arrow")
	if err := os.Link(nums, in); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		os.Link(other, later)
	}()
	var steps []int64
	previewed := false
	res, err := f.l.Launch(context.Background(), function.Invocation{Model: "doubled", Run: f.run, Env: f.env,
		ModulePath: filepath.Join(f.code, "models.py"), Function: "double", DataDir: inv, Output: filepath.Join(inv, "out.arrow"),
		Inputs: []function.Input{{Arg: "data", Path: in}}, InputsLater: true, PreviewRows: 2,
		Then: []function.Step{{Model: "summed", ModulePath: filepath.Join(f.code, "models.py"), Function: "add", Chain: "data",
			Inputs: []function.Input{{Arg: "other", Path: later}}}},
		OnStep: func(i int, rows int64) {
			steps = append(steps, int64(i), rows)
			_, err := os.Stat(function.PreviewPath(inv, i-1))
			previewed = err == nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got := launchertest.ReadColumn(t, res.Output, "x"); !slices.Equal(got, []int64{12, 24, 36}) {
		t.Fatalf("output %v", got)
	}
	if !slices.Equal(steps, []int64{1, 3}) || !slices.Equal(res.StepRows, []int64{3}) || res.Rows != 3 || !previewed {
		t.Fatalf("steps %v, step rows %v, rows %d, previewed %v", steps, res.StepRows, res.Rows, previewed)
	}
}

// TestWaitsForAWorker: with no worker alive a launch waits (saying so
// once) until one joins; an expectation's bool comes back.
func TestWaitsForAWorker(t *testing.T) {
	f := newTestFleet(t, "w1")
	nums := f.write("numbers", 1)
	f.mu.Lock()
	f.workers["w1"].dead = true
	f.mu.Unlock()
	time.Sleep(100 * time.Millisecond) // the launcher has seen it go
	go func() {
		time.Sleep(300 * time.Millisecond)
		f.mu.Lock()
		f.workers["w1"].dead = false
		f.mu.Unlock()
	}()
	inv := filepath.Join(f.dir, "inv-check")
	os.MkdirAll(inv, 0o755)
	defer os.RemoveAll(inv)
	in := filepath.Join(inv, "in.arrow")
	os.Link(nums, in)
	var lines []string
	res, err := f.l.Launch(context.Background(), function.Invocation{Model: "check", Run: f.run, Env: f.env,
		ModulePath: filepath.Join(f.code, "models.py"), Function: "check", DataDir: inv,
		Inputs: []function.Input{{Arg: "data", Path: in}},
		Log:    func(l function.LogLine) { lines = append(lines, l.Text) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Expectation == nil || !*res.Expectation || res.Output != "" || res.Worker != "w1" {
		t.Fatalf("result %+v", res)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "no worker alive") {
		t.Fatalf("log %q, want one line saying it waits", lines)
	}
}

func TestCleanLeftovers(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"run-abc/t1/in0.arrow", "run-def/out/x.arrow", "other/keep"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644)
	}
	if err := CleanLeftovers(dir); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "other" {
		t.Fatalf("left %v", ents)
	}
	if err := CleanLeftovers(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("a missing folder: %v", err)
	}
}

// TestHolderGone: a child whose parent's worker is gone reads the
// parent's output from the control plane.
func TestHolderGone(t *testing.T) {
	f := newTestFleet(t, "w1", "w2")
	ctx := context.Background()
	nums := f.write("numbers", 1, 2, 3)
	parent, pout, err := f.call(ctx, "doubled", "double", map[string]string{"data": nums}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.workers[parent.Worker].dead = true
	f.mu.Unlock()
	before := f.ctlDP.doGets(t)
	child, cout, err := f.call(ctx, "plus_one", "plus", map[string]string{"data": pout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if child.Worker == parent.Worker {
		t.Fatalf("child ran on the gone worker %s", child.Worker)
	}
	if got := launchertest.ReadColumn(t, cout, "x"); !slices.Equal(got, []int64{3, 5, 7}) {
		t.Fatalf("child output %v", got)
	}
	if n := f.ctlDP.doGets(t) - before; n != 1 {
		t.Fatalf("the control plane handed over %d intermediates for the child, want 1", n)
	}
}
