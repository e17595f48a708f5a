// Package launchertest is the conformance suite every function.Launcher
// passes: the same functions (testdata/functions/funcs.py), the same
// checks, against the process and the containerd launcher.
package launchertest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/envcache/envtest"
	"github.com/lakehouse-dev/lakehouse/internal/repodir"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
)

// Capabilities say what a launcher enforces beyond the common contract.
type Capabilities struct {
	// NetworkIsolation: without internet access no connection can be
	// opened.
	NetworkIsolation bool
	// Isolation: the launcher isolates functions (issue 12): the hostile
	// suite runs, and every attack in it must fail.
	Isolation bool
}

// FunctionsFile is testdata/functions/funcs.py.
func FunctionsFile(t testing.TB) string {
	p := repodir.Path("testdata/functions/funcs.py")
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// DataDir makes an invocation data folder in /dev/shm, removed after t.
func DataDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "lakehouse-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// logs collects log lines.
type logs struct {
	mu    sync.Mutex
	lines []function.LogLine
}

func (l *logs) sink(line function.LogLine) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

func (l *logs) text(stream string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range l.lines {
		if ln.Stream == stream {
			out = append(out, ln.Text)
		}
	}
	return out
}

// WriteInts writes an Arrow IPC file with one int64 column x.
func WriteInts(t testing.TB, path string, xs ...int64) {
	t.Helper()
	mem := memory.NewGoAllocator()
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(xs, nil)
	arr := b.NewArray()
	defer arr.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecord(schema, []arrow.Array{arr}, int64(len(xs)))
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// ReadColumn reads an int64 column of an Arrow IPC file.
func ReadColumn(t testing.TB, path, col string) []int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []int64
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		idx := rec.Schema().FieldIndices(col)
		if len(idx) == 0 {
			t.Fatalf("no column %s in %s", col, rec.Schema())
		}
		out = append(out, rec.Column(idx[0]).(*array.Int64).Int64Values()...)
	}
	return out
}

// Env is the suite's main environment: Python 3.11 with pandas 2.2 (and
// pyarrow), from the shared test cache.
func Env(t testing.TB) *envcache.Environment { return envtest.Env(t, "3.11", "pandas==2.2.*") }

// Run runs the suite against l.
func Run(t *testing.T, l function.Launcher, caps Capabilities) {
	funcs := FunctionsFile(t)
	env := Env(t)
	call := func(t *testing.T, fn string, mod func(*function.Invocation)) (*function.Result, error, *logs) {
		t.Helper()
		lg := &logs{}
		inv := function.Invocation{
			Model: fn, Env: env, ModulePath: funcs, Function: fn,
			DataDir: DataDir(t), Timeout: time.Minute, Log: lg.sink,
		}
		inv.Output = filepath.Join(inv.DataDir, "out.arrow")
		if mod != nil {
			mod(&inv)
		}
		res, err := l.Launch(context.Background(), inv)
		return res, err, lg
	}
	withInput := func(xs ...int64) func(*function.Invocation) {
		return func(inv *function.Invocation) {
			p := filepath.Join(inv.DataDir, "in.arrow")
			WriteInts(t, p, xs...)
			inv.Inputs = []function.Input{{Arg: "data", Path: p}}
		}
	}
	failure := func(t *testing.T, err error, kind function.FailureKind) *function.FunctionError {
		t.Helper()
		var fe *function.FunctionError
		if !errors.As(err, &fe) || fe.Kind != kind {
			t.Fatalf("err %v (%T), want a %s failure", err, err, kind)
		}
		t.Log(fe)
		return fe
	}

	t.Run("hello logs a line", func(t *testing.T) {
		res, err, lg := call(t, "hello", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := lg.text("stdout"); len(got) != 1 || got[0] != "hello from a function" {
			t.Fatalf("stdout %q", got)
		}
		if res.Output != "" {
			t.Fatalf("output %q for a function returning None", res.Output)
		}
		lg.mu.Lock()
		if lg.lines[0].Model != "hello" {
			t.Errorf("line tagged %q", lg.lines[0].Model)
		}
		lg.mu.Unlock()
	})
	t.Run("arrow in and out with parameters", func(t *testing.T) {
		res, err, lg := call(t, "double", func(inv *function.Invocation) {
			withInput(1, 2, 3)(inv)
			inv.Params = map[string]any{"factor": 10}
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := ReadColumn(t, res.Output, "x"); len(got) != 3 || got[0] != 10 || got[2] != 30 || res.Rows != 3 {
			t.Fatalf("output %v rows %d", got, res.Rows)
		}
		if got := lg.text("stdout"); len(got) != 1 || got[0] != "rows in: 3" {
			t.Fatalf("stdout %q", got)
		}
	})
	t.Run("pandas result", func(t *testing.T) {
		res, err, _ := call(t, "as_pandas", withInput(1, 2))
		if err != nil {
			t.Fatal(err)
		}
		if got := ReadColumn(t, res.Output, "y"); len(got) != 2 || got[1] != 3 {
			t.Fatalf("y %v", got)
		}
	})
	t.Run("record batch reader result", func(t *testing.T) {
		res, err, _ := call(t, "as_reader", withInput(1, 2, 3, 4, 5))
		if err != nil {
			t.Fatal(err)
		}
		if got := ReadColumn(t, res.Output, "x"); len(got) != 5 || res.Rows != 5 {
			t.Fatalf("x %v", got)
		}
	})
	t.Run("expectation", func(t *testing.T) {
		res, err, _ := call(t, "expectation", withInput(1))
		if err != nil || res.Expectation == nil || !*res.Expectation {
			t.Fatalf("res %+v err %v", res, err)
		}
	})
	t.Run("bad return type", func(t *testing.T) {
		_, err, _ := call(t, "bad_return", nil)
		fe := failure(t, err, function.FailureException)
		if fe.Type != "TypeError" || !strings.Contains(fe.Message, "returned int") {
			t.Fatalf("%+v", fe)
		}
	})
	t.Run("exception with user traceback", func(t *testing.T) {
		_, err, _ := call(t, "fail", nil)
		fe := failure(t, err, function.FailureException)
		if fe.Type != "ValueError" || fe.Message != "something is wrong with the data" {
			t.Fatalf("%+v", fe)
		}
		if !strings.Contains(fe.Traceback, "funcs.py") || !strings.Contains(fe.Traceback, "in helper") || strings.Contains(fe.Traceback, "<string>") {
			t.Fatalf("traceback:\n%s", fe.Traceback)
		}
	})
	t.Run("unknown function", func(t *testing.T) {
		_, err, _ := call(t, "no_such_function", nil)
		fe := failure(t, err, function.FailureException)
		if !strings.Contains(fe.Message, "no function no_such_function") {
			t.Fatalf("%+v", fe)
		}
	})
	t.Run("interpreter crash", func(t *testing.T) {
		_, err, lg := call(t, "crash", nil)
		fe := failure(t, err, function.FailureCrash)
		if fe.Signal != "SIGABRT" {
			t.Fatalf("signal %q", fe.Signal)
		}
		if got := lg.text("stdout"); len(got) == 0 || got[0] != "about to crash" {
			t.Fatalf("stdout %q", got)
		}
	})
	t.Run("exit without result", func(t *testing.T) {
		_, err, _ := call(t, "exit_quietly", nil)
		fe := failure(t, err, function.FailureCrash)
		if fe.ExitCode != 3 {
			t.Fatalf("exit code %d", fe.ExitCode)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		_, err, lg := call(t, "sleep_forever", func(inv *function.Invocation) { inv.Timeout = 1500 * time.Millisecond })
		failure(t, err, function.FailureTimeout)
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("took %s", d)
		}
		if !strings.Contains(err.Error(), "model sleep_forever timed out after 1.5s") {
			t.Fatalf("message %q", err)
		}
		if got := lg.text("stdout"); len(got) != 1 {
			t.Fatalf("stdout %q", got)
		}
	})
	t.Run("memory hog stopped at its limit", func(t *testing.T) {
		_, err, _ := call(t, "memory_hog", func(inv *function.Invocation) {
			inv.Model = "hog"
			inv.Memory = 256 << 20
		})
		failure(t, err, function.FailureOutOfMemory)
		if err.Error() != "model hog exceeded its memory limit of 256 MiB" {
			t.Fatalf("message %q", err)
		}
	})
	t.Run("fused chain passes tables in memory", func(t *testing.T) {
		var steps []int
		res, err, lg := call(t, "double", func(inv *function.Invocation) {
			withInput(1, 2, 3)(inv)
			inv.Model, inv.Params = "a", map[string]any{"factor": 10}
			inv.Then = []function.Step{
				{Model: "b", ModulePath: funcs, Function: "as_pandas", Chain: "data"},
				{Model: "c", ModulePath: funcs, Function: "double", Chain: "data", ChainColumns: []string{"x"},
					Params: map[string]any{"factor": 2}},
			}
			inv.OnStep = func(i int, rows int64) { steps = append(steps, i*100+int(rows)) }
			inv.PreviewRows = 2
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := ReadColumn(t, res.Output, "x"); len(got) != 3 || got[0] != 20 || got[2] != 60 || res.Rows != 3 {
			t.Fatalf("output %v rows %d", got, res.Rows)
		}
		if len(res.StepRows) != 2 || res.StepRows[0] != 3 || res.StepRows[1] != 3 {
			t.Fatalf("step rows %v", res.StepRows)
		}
		if len(steps) != 2 || steps[0] != 103 || steps[1] != 203 {
			t.Fatalf("OnStep calls %v (step*100+rows)", steps)
		}
		if got := ReadColumn(t, function.PreviewPath(filepath.Dir(res.Output), 1), "x"); len(got) != 2 || got[1] != 20 {
			t.Fatalf("preview of b: %v", got)
		}
		lg.mu.Lock()
		defer lg.mu.Unlock()
		var tagged []string
		for _, l := range lg.lines {
			tagged = append(tagged, l.Model+":"+l.Stream+":"+l.Text)
		}
		if strings.Join(tagged, "|") != "a:stdout:rows in: 3|c:stdout:rows in: 3" {
			t.Fatalf("lines %q", tagged)
		}
	})
	t.Run("fused chain failure names the failing model", func(t *testing.T) {
		_, err, lg := call(t, "double", func(inv *function.Invocation) {
			withInput(1, 2, 3)(inv)
			inv.Model, inv.Params = "a", map[string]any{"factor": 10}
			inv.Then = []function.Step{{Model: "b", ModulePath: funcs, Function: "fail_on", Chain: "data"}}
		})
		fe := failure(t, err, function.FailureException)
		if fe.Model != "b" || fe.Type != "ValueError" || !strings.Contains(fe.Traceback, "in fail_on") {
			t.Fatalf("%+v", fe)
		}
		lg.mu.Lock()
		defer lg.mu.Unlock()
		if n := len(lg.lines); n != 2 || lg.lines[1].Model != "b" || lg.lines[1].Text != "checking 3" {
			t.Fatalf("lines %+v", lg.lines)
		}
	})
	t.Run("fused chain step returning None", func(t *testing.T) {
		_, err, _ := call(t, "hello", func(inv *function.Invocation) {
			inv.Then = []function.Step{{Model: "b", ModulePath: funcs, Function: "double", Chain: "data",
				Params: map[string]any{"factor": 2}}}
		})
		fe := failure(t, err, function.FailureException)
		if fe.Model != "hello" || fe.Type != "TypeError" || !strings.Contains(fe.Message, "returned NoneType") {
			t.Fatalf("%+v", fe)
		}
	})
	t.Run("fused chain out of memory names the model", func(t *testing.T) {
		_, err, _ := call(t, "double", func(inv *function.Invocation) {
			withInput(1, 2, 3)(inv)
			inv.Model, inv.Params, inv.Memory = "a", map[string]any{"factor": 10}, 256<<20
			inv.Then = []function.Step{{Model: "hog", ModulePath: funcs, Function: "hog_on", Chain: "data"}}
		})
		failure(t, err, function.FailureOutOfMemory)
		if err.Error() != "model hog exceeded its memory limit of 256 MiB" {
			t.Fatalf("message %q", err)
		}
	})
	t.Run("fused chain bad step", func(t *testing.T) {
		_, err, _ := call(t, "double", func(inv *function.Invocation) {
			withInput(1)(inv)
			inv.Params = map[string]any{"factor": 1}
			inv.Then = []function.Step{{Model: "b", ModulePath: "/etc/passwd.py", Function: "x", Chain: "data"}}
		})
		if err == nil || !strings.Contains(err.Error(), "beside") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("cannot write into a package folder", func(t *testing.T) {
		target := filepath.Join(env.Packages[0].Dir, "pwned.txt")
		_, err, _ := call(t, "write_package", func(inv *function.Invocation) {
			inv.Params = map[string]any{"path": target}
		})
		fe := failure(t, err, function.FailureException)
		if fe.Type != "PermissionError" && fe.Type != "OSError" {
			t.Fatalf("%+v", fe)
		}
		if _, err := os.Stat(target); err == nil {
			os.Remove(target)
			t.Fatal("the function wrote into a package folder")
		}
	})
	t.Run("no capabilities", func(t *testing.T) {
		_, err, lg := call(t, "capabilities", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := lg.text("stdout"); len(got) != 1 || strings.Trim(got[0], "0") != "" {
			t.Fatalf("effective capabilities %q", got)
		}
	})
	t.Run("network", func(t *testing.T) {
		if !caps.NetworkIsolation {
			t.Skip("this launcher does not isolate the network (documented)")
		}
		_, err, _ := call(t, "connect", func(inv *function.Invocation) {
			inv.Params = map[string]any{"host": "pypi.org", "port": 443}
		})
		failure(t, err, function.FailureException)
		_, err, _ = call(t, "connect", func(inv *function.Invocation) {
			inv.Params = map[string]any{"host": "1.1.1.1", "port": 53}
		})
		failure(t, err, function.FailureException)
		_, err, _ = call(t, "connect", func(inv *function.Invocation) {
			inv.Params = map[string]any{"host": "pypi.org", "port": 443}
			inv.InternetAccess = true
		})
		if err != nil {
			t.Fatalf("with internet access: %v", err)
		}
	})
	t.Run("hostile function", func(t *testing.T) {
		if !caps.Isolation {
			t.Skip("this launcher runs without isolation")
		}
		runHostile(t, l, env)
	})
	t.Run("stdout and stderr line by line", func(t *testing.T) {
		_, err, lg := call(t, "logs", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(lg.text("stdout"), ","); got != "out 0,out 1,out 2" {
			t.Fatalf("stdout %q", got)
		}
		if got := strings.Join(lg.text("stderr"), ","); got != "err 0,err 1,err 2" {
			t.Fatalf("stderr %q", got)
		}
		lg.mu.Lock()
		first, last := lg.lines[0].Time, lg.lines[len(lg.lines)-1].Time
		lg.mu.Unlock()
		if last.Sub(first) < 50*time.Millisecond {
			t.Fatalf("lines arrived together (%s apart): not forwarded while running", last.Sub(first))
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		dir := DataDir(t)
		_, err := l.Launch(ctx, function.Invocation{Model: "c", Env: env, ModulePath: funcs, Function: "sleep_forever", DataDir: dir})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i], _ = call(t, "double", func(inv *function.Invocation) {
					withInput(int64(i))(inv)
					inv.Params = map[string]any{"factor": 2}
				})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("nothing left in the data folder", func(t *testing.T) {
		dir := DataDir(t)
		_, err := l.Launch(context.Background(), function.Invocation{Model: "h", Env: env, ModulePath: funcs, Function: "fail", DataDir: dir})
		if err == nil {
			t.Fatal("no error")
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 0 {
			t.Fatalf("left %d files", len(ents))
		}
	})
	t.Run("pandas 1.5 on Python 3.10 beside pandas 2.2 on Python 3.11", func(t *testing.T) {
		// pandas 1.5.3 declares no upper bound on numpy but is built
		// against numpy 1; its users pin numpy<2 themselves.
		envs := map[string]*envcache.Environment{
			"1.5.3": envtest.Env(t, "3.10", "pandas==1.5.3", "numpy<2"),
			"2.2.":  env,
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[string]string{}
		for want, e := range envs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dir := DataDir(t)
				res, err := l.Launch(context.Background(), function.Invocation{Model: "versions", Env: e, ModulePath: funcs,
					Function: "versions", DataDir: dir, Output: filepath.Join(dir, "v.arrow"), Timeout: time.Minute})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[want] = readStrings(t, res.Output, "pandas")[0] + " on " + readStrings(t, res.Output, "python")[0]
				mu.Unlock()
			}()
		}
		wg.Wait()
		if got["1.5.3"] != "1.5.3 on 3.10" || !strings.HasPrefix(got["2.2."], "2.2.") || !strings.HasSuffix(got["2.2."], " on 3.11") {
			t.Fatalf("versions %v", got)
		}
		t.Log(got)
	})
}

func readStrings(t testing.TB, path, col string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		c := rec.Column(rec.Schema().FieldIndices(col)[0])
		for j := 0; j < c.Len(); j++ {
			out = append(out, c.ValueStr(j))
		}
	}
	return out
}
