package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// localRuns runs pipelines in this process. It is the run service of the
// embedded CLI (projects read in place) and of `lakehouse serve` (projects
// sent as tars, runs that may detach, interrupted at shutdown); the run
// commands talk to it, or to a server's flight.Client, through flight.Runs.
type localRuns struct {
	e *Env
	// served: a server's runs.
	served bool
	// gate holds runs back between functions while queries run (served).
	gate *admission
	// metrics counts the server's runs and their merges (nil: none).
	metrics *flight.Metrics
	// project bounds the projects clients send (served).
	project projectLimits

	mu       sync.Mutex
	live     map[string]*liveRun // runs under way in this process, by id
	stopping bool
	// stopBegan is when the server began to stop.
	stopBegan time.Time
	wg        sync.WaitGroup // runs under way (detached ones included)
}

var _ flight.Runs = (*localRuns)(nil)

// MaxProjectBytes is the most a project sent with a run may hold
// compressed (flight.ProjectLimiter): a server refuses larger run
// requests before decoding them. 0 (no bound) for the embedded CLI.
func (r *localRuns) MaxProjectBytes() int64 {
	if !r.served {
		return 0
	}
	return r.project.bytes
}

// liveRun is a run under way in this process.
type liveRun struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// propServed marks the records of runs a server ran: a server that starts
// again reports the ones its predecessor left unfinished as interrupted.
const propServed = "lakehouse.served"

// defaultPriority is a run's priority when none is given.
const defaultPriority = 5

// runService is what the run commands talk to: the server's runs when the
// commands talk to a server, else this process's.
func (e *Env) runService() (flight.Runs, error) {
	c, err := e.remoteClient()
	if err != nil {
		return nil, err
	}
	if c != nil {
		return c, nil
	}
	return &localRuns{e: e, live: map[string]*liveRun{}}, nil
}

// runFlagsOf checks the run options of a body as parseRunFlags checks the
// command line's.
func runFlagsOf(strict, noCache, noFuse bool, preview, keepFailed, launcher, isolation string) (runFlags, error) {
	f := runFlags{strict: strict, noCache: noCache, noFuse: noFuse, launcher: launcher, isolation: isolation}
	if f.launcher == "" {
		f.launcher = launchers.Auto
	}
	if f.isolation == "" {
		f.isolation = launchers.IsolationAuto
	}
	if f.isolation != launchers.IsolationAuto && f.isolation != launchers.IsolationNone {
		return f, errdefs.New(errdefs.ErrInvalidArgument, "invalid isolation %q: use auto or none", f.isolation)
	}
	switch preview {
	case "head":
		f.preview = true
	case "off":
	default:
		return f, errdefs.New(errdefs.ErrInvalidArgument, "invalid preview %q: use head or off", preview)
	}
	if f.launcher != launchers.Auto && f.launcher != launchers.Process && f.launcher != launchers.Containerd {
		return f, errdefs.New(errdefs.ErrInvalidArgument, "invalid launcher %q: use auto, process or containerd", f.launcher)
	}
	if keepFailed == "" {
		keepFailed = "7d"
	}
	d, err := parseRetention(keepFailed)
	if err != nil {
		return f, errdefs.New(errdefs.ErrInvalidArgument, "invalid keep_failed %q: use a duration such as 7d, 36h or 0", keepFailed)
	}
	if d == 0 {
		d = -1 // drop at once
	}
	f.keepFailed = d
	return f, nil
}

func checkPriority(p int) (int, error) {
	switch {
	case p == 0:
		return defaultPriority, nil
	case p < 1 || p > 10:
		return 0, errdefs.WithHint(errdefs.ErrInvalidArgument, "give --priority 1 (lowest) to 10 (highest)", "invalid priority %d", p)
	}
	return p, nil
}

// detachError refuses --detach without a server.
func detachError() error {
	return errdefs.WithHint(errdefs.ErrFailedPrecondition,
		"start a server (`lakehouse serve`) and run with --addr, or run without --detach",
		"run --detach needs a lakehouse server: without one a run lives and dies with the command that runs it")
}

// Run implements flight.Runs.
func (lr *localRuns) Run(ctx context.Context, b flight.RunBody, send func(*flight.RunEvent) error) error {
	e := lr.e
	if b.Preview == "" {
		b.Preview = "head"
	}
	f, err := runFlagsOf(b.Strict, b.NoCache, b.NoFuse, b.Preview, b.KeepFailed, b.Launcher, b.Isolation)
	if err != nil {
		return err
	}
	prio, err := checkPriority(b.Priority)
	if err != nil {
		return err
	}
	if b.Ref == "" {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "name the branch to run on (ref)", "the run names no ref")
	}
	ref, err := catalog.ParseRef(b.Ref)
	if err != nil {
		return err
	}
	var ns, profNS catalog.Namespace
	if b.Namespace != "" {
		if ns, err = catalog.ParseNamespace(b.Namespace); err != nil {
			return err
		}
	}
	if b.ProfileNamespace != "" {
		if profNS, err = catalog.ParseNamespace(b.ProfileNamespace); err != nil {
			return err
		}
	}
	if b.Detach && !lr.served && !b.DryRun {
		return detachError()
	}
	var target catalog.BranchName
	if !b.DryRun {
		if target, err = runTarget(ctx, e, ref); err != nil {
			return err
		}
	}
	dir, shown := b.Dir, b.ProjectDir
	if dir == "" {
		dir = "."
	}
	cleanup := func() {}
	if lr.served {
		tmp, err := unpackProject(b.Project, e.projectScratch(), lr.project)
		if err != nil {
			return err
		}
		// The run reads its code from the copy it stores when it starts:
		// the folder goes then, or when the run could not start.
		dir, cleanup = tmp, sync.OnceFunc(func() { os.RemoveAll(tmp) })
		if shown == "" {
			shown = b.Dir // the record names the folder as the client did
		}
	}
	plan, err := e.planProject(ctx, dir, ref, ns, profNS, b.Parameters, f)
	if err != nil {
		cleanup()
		if lr.served {
			return clientPaths(err, dir, b.Dir)
		}
		return err
	}
	if b.DryRun {
		defer cleanup()
		var text, js bytes.Buffer
		if err := plan.WriteTree(&text); err != nil {
			return err
		}
		if err := plan.WriteJSON(&js); err != nil {
			return err
		}
		if err := send(&flight.RunEvent{Type: flight.EventPlan, Text: text.String(), Plan: js.String()}); err != nil {
			return err
		}
		e.recordDryRun(plan, dir, shown, ref, f, b.User)
		return nil
	}
	job := runJob{plan: plan, dir: dir, shownDir: shown, target: target, flags: f, user: b.User,
		id: runrec.NewID(time.Now().UTC())}
	return lr.start(ctx, job, prio, b.Detach, cleanup, send)
}

// runTarget is the branch a run of ref writes: ref must name a branch.
func runTarget(ctx context.Context, e *Env, ref catalog.Ref) (catalog.BranchName, error) {
	if ref.Commit != "" || !ref.Time.IsZero() || ref.Name == "" {
		return "", errdefs.WithHint(errdefs.ErrInvalidArgument, "give a branch name with -r (runs write to a branch), or use --dry-run",
			"a run cannot write to %s", ref)
	}
	target, err := e.branchArg(ctx, ref.Name)
	if err != nil {
		return "", err
	}
	svc, err := e.Service(ctx)
	if err != nil {
		return "", err
	}
	if e.isTag(ctx, svc, ref.Name) {
		return "", tagWriteError(ref.Name)
	}
	return target, nil
}

// clientPaths names the files of a project a client sent under the
// client's folder, not the server's copy.
func clientPaths(err error, dir, clientDir string) error {
	msg, hint := errdefs.Split(err)
	if !strings.Contains(msg, dir) && !strings.Contains(hint, dir) {
		return err
	}
	prefix := ""
	if clientDir != "" && clientDir != "." {
		prefix = strings.TrimSuffix(clientDir, "/") + "/"
	}
	if clientDir == "" {
		clientDir = "."
	}
	fix := func(s string) string {
		s = strings.ReplaceAll(s, dir+"/", prefix)
		return strings.ReplaceAll(s, dir, clientDir)
	}
	if hint != "" {
		return errdefs.WithHint(errdefs.Class(err), fix(hint), "%s", fix(msg))
	}
	return errdefs.New(errdefs.Class(err), "%s", fix(msg))
}

// projectScratch is where a server unpacks the projects clients send.
func (e *Env) projectScratch() string { return os.TempDir() }

// start runs job under the service's bookkeeping: registered for cancel
// and shutdown, held back by the gate, and detached if asked (then it
// returns once the run started). cleanup runs when the run has ended.
func (lr *localRuns) start(ctx context.Context, job runJob, prio int, detach bool, cleanup func(), send func(*flight.RunEvent) error) error {
	runCtx, err := lr.begin(ctx, job.id, detach)
	if err != nil {
		cleanup()
		return err
	}
	if lr.gate != nil {
		job.admit = func(ctx context.Context) error { return lr.gate.run(ctx, prio) }
	}
	if lr.served {
		job.properties = map[string]string{propServed: "true"}
	}
	inner := send
	send = func(ev *flight.RunEvent) error {
		if ev.Type == flight.EventStarted {
			cleanup()
		}
		return inner(ev)
	}
	// The folder goes before the run counts as ended (a stopping server
	// waits for that).
	if !detach {
		defer lr.end(job.id)
		defer cleanup()
		return lr.execute(runCtx, job, send)
	}
	ds := &detachedSend{send: send, started: make(chan error, 1)}
	go func() {
		defer lr.end(job.id)
		defer cleanup()
		if err := lr.execute(runCtx, job, ds.forward); err != nil {
			ds.fail(err)
		}
	}()
	select {
	case err := <-ds.started:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// detachedSend forwards a detached run's events until it has started
// (its start or its failure to start), then drops them: the client left.
type detachedSend struct {
	mu      sync.Mutex
	send    func(*flight.RunEvent) error
	started chan error
	done    bool
}

func (d *detachedSend) forward(ev *flight.RunEvent) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return nil
	}
	err := d.send(ev)
	if ev.Type == flight.EventStarted || ev.Type == flight.EventFinished {
		d.done = true
		d.started <- err
	}
	return nil
}

func (d *detachedSend) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.done {
		d.done = true
		d.started <- err
	}
}

// begin registers run id and returns its context. A run that is not
// detached stops when its caller goes away (as Ctrl-C stops an embedded
// run); every run stops, as interrupted, when the server does.
func (lr *localRuns) begin(ctx context.Context, id string, detach bool) (context.Context, error) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if lr.stopping {
		return nil, errdefs.WithHint(errdefs.ErrUnavailable, "retry when it is back", "the server is shutting down")
	}
	runCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	l := &liveRun{cancel: cancel, done: make(chan struct{})}
	lr.live[id] = l
	lr.wg.Add(1)
	if !detach {
		go func() {
			select {
			case <-ctx.Done():
				lr.mu.Lock()
				stopping := lr.stopping
				lr.mu.Unlock()
				if stopping {
					cancel(pipeline.ErrInterrupted)
				} else {
					cancel(context.Canceled)
				}
			case <-l.done:
			}
		}()
	}
	return runCtx, nil
}

func (lr *localRuns) end(id string) {
	lr.mu.Lock()
	l := lr.live[id]
	delete(lr.live, id)
	lr.mu.Unlock()
	if l != nil {
		l.cancel(nil)
		close(l.done)
		lr.wg.Done()
	}
}

// execute runs job, sending its events. It returns an error for a run
// that could not start, or what sending its end returned (a failed run is
// an event, not an error).
func (lr *localRuns) execute(ctx context.Context, job runJob, send func(*flight.RunEvent) error) error {
	rec, err := lr.e.runPipeline(ctx, job, lr.sink(send))
	if rec == nil {
		return err
	}
	lr.metrics.Run(time.Duration(rec.Duration * float64(time.Second)))
	if rec.Status == runrec.StatusSucceeded && rec.EndCommit != "" && rec.EndCommit != rec.StartCommit && rec.EndCommit != rec.BaseCommit {
		lr.metrics.Commit()
	}
	return send(&flight.RunEvent{Type: flight.EventFinished, RunID: rec.ID, Record: rec, Error: runFailureOf(rec, err)})
}

// sink turns a run's progress into events. A client that went away stops
// receiving them; the run itself is stopped through its context.
func (lr *localRuns) sink(send func(*flight.RunEvent) error) runSink {
	return runSink{
		started: func(rec *runrec.Record) {
			send(&flight.RunEvent{Type: flight.EventStarted, RunID: rec.ID, Record: rec})
		},
		event:    func(ev pipeline.Event) { send(wireEvent(ev)) },
		notice:   func(text string) { send(&flight.RunEvent{Type: flight.EventNotice, Text: text}) },
		download: downloadEvents(send, time.Now),
	}
}

// downloadEvents sends how far a run's package downloads have got: when a
// download starts or ends, and otherwise at most every
// downloadEventEvery.
func downloadEvents(send func(*flight.RunEvent) error, now func() time.Time) func(envcache.DownloadProgress) {
	var last envcache.DownloadProgress
	var sent time.Time
	return func(p envcache.DownloadProgress) {
		t := now()
		if p.Files == last.Files && p.Done == last.Done && t.Sub(sent) < downloadEventEvery {
			return
		}
		last, sent = p, t
		send(&flight.RunEvent{Type: flight.EventDownload, Files: p.Files, FilesDone: p.Done, Bytes: p.Bytes, TotalBytes: p.TotalBytes})
	}
}

// downloadEventEvery is how often a run's download progress is sent
// while the same downloads go on.
const downloadEventEvery = 200 * time.Millisecond

// wireEvent converts a pipeline event for the wire.
func wireEvent(ev pipeline.Event) *flight.RunEvent {
	w := &flight.RunEvent{Model: ev.Model, Rows: ev.Rows, Text: ev.Text}
	switch ev.Kind {
	case pipeline.EventState:
		w.Type, w.State, w.Elapsed = flight.EventState, ev.State, ev.Elapsed
	case pipeline.EventLog:
		w.Type, w.Model, w.Stream, w.Text, w.Time = flight.EventLog, ev.Line.Model, ev.Line.Stream, ev.Line.Text, ev.Line.Time
	case pipeline.EventPreview:
		w.Type = flight.EventPreview
	case pipeline.EventMessage:
		w.Type = flight.EventMessage
	case pipeline.EventWarning:
		w.Type = flight.EventWarning
	}
	return w
}

// pipelineEvent converts a wire event back (ok false: not a pipeline
// event).
func pipelineEvent(w *flight.RunEvent) (ev pipeline.Event, ok bool) {
	ev = pipeline.Event{Model: w.Model, Rows: w.Rows, Text: w.Text}
	switch w.Type {
	case flight.EventState:
		ev.Kind, ev.State, ev.Elapsed = pipeline.EventState, w.State, w.Elapsed
	case flight.EventLog:
		ev.Kind = pipeline.EventLog
		ev.Line.Model, ev.Line.Stream, ev.Line.Text, ev.Line.Time = w.Model, w.Stream, w.Text, w.Time
		ev.Text = ""
	case flight.EventPreview:
		ev.Kind = pipeline.EventPreview
	case flight.EventMessage:
		ev.Kind = pipeline.EventMessage
	case flight.EventWarning:
		ev.Kind = pipeline.EventWarning
	default:
		return ev, false
	}
	return ev, true
}
