package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// runView prints a run as it happens. Every line a function prints
// appears at once, prefixed by its model; on a terminal a status block
// under the logs shows each model's state and elapsed time, redrawn in
// place four times a second; elsewhere each state change is one line, and
// a model running for a minute or more gets a line a minute. A running
// model that has printed nothing for a minute says so: "running 3m12s, no
// output for 1m05s".
type runView struct {
	e      *Env
	w      io.Writer
	live   bool // redraw a status block (a terminal)
	mu     sync.Mutex
	order  []string
	models map[string]*modelView
	drawn  int // lines of the status block on screen
	target catalog.BranchName
	stop   chan struct{}
	done   sync.WaitGroup
	width  int
	// now is the clock (time.Now; tests set their own).
	now func() time.Time
	// quiet is how long a running model may print nothing before its line
	// says so, and how often a periodic line is printed without a terminal.
	quiet time.Duration
	// tick is how often the block is redrawn (on a terminal) or running
	// models are checked for a periodic line (elsewhere).
	tick time.Duration
	// dl is how far the run's package downloads have got, shown as a
	// line under the block on a terminal while some go on; dlStart is
	// when the first began.
	dl      *flight.RunEvent
	dlStart time.Time
}

type modelView struct {
	state   string
	started time.Time
	ended   time.Time
	// output is when the model last printed a line (or started running).
	output time.Time
	// reported is when the last periodic line was printed (no terminal).
	reported time.Time
	rows     int64
	kind     string
}

// Defaults of runView's quiet and tick.
const (
	quietAfter  = time.Minute
	redrawEvery = 250 * time.Millisecond
)

func newRunView(e *Env, p *planner.Plan, target catalog.BranchName) *runView {
	models := make([]*runrec.Model, len(p.Models))
	for i, n := range p.Models {
		models[i] = &runrec.Model{Name: n.Name, Kind: n.Kind}
	}
	return newRunViewOf(e, models, target)
}

// newRunViewOf is the view of a run of models (in plan order, as its
// record lists them).
func newRunViewOf(e *Env, models []*runrec.Model, target catalog.BranchName) *runView {
	v := &runView{e: e, w: e.Stdout, models: map[string]*modelView{}, target: target, stop: make(chan struct{}),
		now: time.Now, quiet: quietAfter, tick: redrawEvery}
	if e.JSON() {
		v.w = e.Stderr // stdout carries the record
	}
	v.live = !e.JSON() && e.StdoutTTY
	for _, n := range models {
		v.order = append(v.order, n.Name)
		v.models[n.Name] = &modelView{state: runrec.StateWaiting, kind: n.Kind}
		v.width = max(v.width, len(n.Name))
	}
	return v
}

// runPrinter shows a run from its events, those of a run in this process
// or of a server's stream alike: the live view, the record under -O json,
// and the error the command exits with.
type runPrinter struct {
	e      *Env
	detach bool
	view   *runView
	// id is the run's, once it started.
	mu sync.Mutex
	id string
	// finished: the view printed the run's end.
	finished bool
	fail     *flight.RunFailure
}

// showRun prints the events run sends and returns the command's error.
//
// A run in this process stops when ctx does. A run in a server is
// cancelled there when ctx ends (Ctrl-C), and its stream is read on to
// the run's end, so the command shows the end of an interrupted run as
// it does embedded.
func (e *Env) showRun(ctx context.Context, runs flight.Runs, detach bool, run func(ctx context.Context, send func(*flight.RunEvent) error) error) error {
	p := &runPrinter{e: e, detach: detach}
	callCtx := ctx
	if _, remote := runs.(*flight.Client); remote && !detach {
		var stop context.CancelFunc
		callCtx, stop = context.WithCancel(context.WithoutCancel(ctx))
		defer stop()
		go func() {
			select {
			case <-ctx.Done():
			case <-callCtx.Done():
				return
			}
			p.mu.Lock()
			id := p.id
			p.mu.Unlock()
			if id == "" {
				stop() // not started: nothing to cancel but the call
				return
			}
			if _, err := runs.CancelRun(callCtx, id); err != nil {
				stop()
			}
		}()
	}
	err := run(callCtx, p.handle)
	if p.view != nil && !p.finished {
		p.view.finish(nil, nil) // the stream broke off: stop the block
	}
	if p.fail != nil {
		return failureError(p.fail)
	}
	return err
}

func (p *runPrinter) handle(ev *flight.RunEvent) error {
	e := p.e
	switch ev.Type {
	case flight.EventPlan:
		if e.JSON() {
			_, err := io.WriteString(e.Stdout, ev.Plan)
			return err
		}
		_, err := io.WriteString(e.Stdout, ev.Text)
		return err
	case flight.EventNotice:
		fmt.Fprintln(e.Stderr, ev.Text)
	case flight.EventPrint:
		fmt.Fprintln(e.outWriter(), ev.Text)
	case flight.EventStarted:
		if ev.Record == nil {
			return fmt.Errorf("the run started without a record")
		}
		if p.detach {
			if e.JSON() {
				return writeJSON(e.Stdout, ev.Record)
			}
			fmt.Fprintln(e.Stdout, ev.Record.ID)
			fmt.Fprintf(e.Stderr, "run %s goes on in the server; follow it with `lakehouse runs logs %s --follow`\n", ev.Record.ID, ev.Record.ID)
			return nil
		}
		p.mu.Lock()
		p.id = ev.Record.ID
		p.mu.Unlock()
		p.view = newRunViewOf(e, ev.Record.Models, catalog.BranchName(ev.Record.Target))
		p.view.started(ev.Record)
	case flight.EventFinished:
		rec := ev.Record
		if rec == nil {
			return fmt.Errorf("the run ended without a record")
		}
		if p.view == nil {
			p.view = newRunViewOf(e, rec.Models, catalog.BranchName(rec.Target))
		}
		var fe error
		if f := ev.Error; f != nil && f.Traceback != "" {
			fe = &function.FunctionError{Model: f.Model, Traceback: f.Traceback}
		}
		p.view.finish(rec, fe)
		p.finished = true
		p.fail = ev.Error
		if e.JSON() {
			return writeJSON(e.Stdout, rec)
		}
	case flight.EventDownload:
		if p.view != nil && !p.finished {
			p.view.download(ev)
		}
	default:
		if pe, ok := pipelineEvent(ev); ok && p.view != nil && !p.finished {
			p.view.event(pe)
		}
	}
	return nil
}

// started prints the run's first line and starts the clock of the block.
func (v *runView) started(rec *runrec.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	fmt.Fprintf(v.w, "run %s: %s, %d model(s), on %s at %s\n", rec.ID, rec.Project, len(v.order), v.target, short12(rec.StartCommit))
	if v.live {
		v.draw()
	}
	v.done.Add(1)
	go func() {
		defer v.done.Done()
		t := time.NewTicker(v.tick)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				v.mu.Lock()
				v.update()
				v.mu.Unlock()
			case <-v.stop:
				return
			}
		}
	}()
}

// update redraws the block on a terminal; elsewhere it prints a line for
// each model that has been running for another quiet period.
func (v *runView) update() {
	if v.live {
		v.redraw(nil)
		return
	}
	now := v.now()
	for _, name := range v.order {
		m := v.models[name]
		if m.state != runrec.StateRunning || m.started.IsZero() {
			continue
		}
		last := m.reported
		if last.IsZero() {
			last = m.started
		}
		if now.Sub(last) >= v.quiet {
			m.reported = now
			v.printf("%-*s  %s%s\n", v.width, name, m.state, v.detail(m))
		}
	}
}

func short12(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// event is the pipeline's progress callback.
func (v *runView) event(ev pipeline.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := v.models[ev.Model]
	switch ev.Kind {
	case pipeline.EventState:
		if m == nil {
			return
		}
		now := v.now()
		if (ev.State == runrec.StateStarting || ev.State == runrec.StateRunning) && m.started.IsZero() {
			m.started = now.Add(-ev.Elapsed)
		}
		if ev.State == runrec.StateRunning && m.state != runrec.StateRunning {
			m.output = now
		}
		m.state, m.rows = ev.State, ev.Rows
		switch ev.State {
		case runrec.StateDone, runrec.StateFailed, runrec.StateReused, runrec.StateSkipped:
			m.ended = now
		}
		if v.live {
			v.redraw(nil)
			return
		}
		if ev.State != runrec.StateStarting {
			m.reported = now
			v.printf("%-*s  %s%s\n", v.width, ev.Model, ev.State, v.detail(m))
		}
	case pipeline.EventLog:
		if m := v.models[ev.Line.Model]; m != nil {
			m.output = v.now()
		}
		v.redraw(func() { v.printf("%s\n", logPrefix(ev.Line, v.width)) })
	case pipeline.EventPreview:
		v.redraw(func() {
			v.printf("%s (%s rows):\n", ev.Model, commas(ev.Rows))
			for _, l := range strings.Split(strings.TrimRight(ev.Text, "\n"), "\n") {
				v.printf("  %s\n", l)
			}
		})
	case pipeline.EventMessage:
		v.redraw(func() { v.printf("%s: %s\n", ev.Model, ev.Text) })
	case pipeline.EventWarning:
		v.redraw(func() { v.printf("warning: %s\n", ev.Text) })
	}
}

func logPrefix(l function.LogLine, width int) string {
	p := fmt.Sprintf("[%s]", l.Model)
	if l.Stream == "stderr" {
		p = fmt.Sprintf("[%s!]", l.Model)
	}
	return fmt.Sprintf("%-*s %s", width+3, p, l.Text)
}

func (v *runView) printf(format string, args ...any) { fmt.Fprintf(v.w, format, args...) }

// detail is the elapsed time of a model, with rows once it is done, and
// how long a running model has printed nothing once that is a quiet period.
func (v *runView) detail(m *modelView) string {
	var parts []string
	if !m.started.IsZero() {
		end := m.ended
		if end.IsZero() {
			end = v.now()
		}
		parts = append(parts, elapsed(end.Sub(m.started)))
	}
	if m.state == runrec.StateRunning && !m.output.IsZero() {
		if q := v.now().Sub(m.output); q >= v.quiet {
			parts = append(parts, "no output for "+elapsed(q))
		}
	}
	if (m.state == runrec.StateDone || m.state == runrec.StateReused) && m.kind == "model" {
		parts = append(parts, commas(m.rows)+" rows")
	}
	if len(parts) == 0 {
		return ""
	}
	return "  " + strings.Join(parts, ", ")
}

// elapsed renders a duration as the status line shows it: tenths of a
// second under a minute ("12.3s"), then minutes and seconds ("3m12s",
// "1h02m05s").
func elapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", max(d, 0).Seconds())
	}
	s := int64(d / time.Second)
	if s < 3600 {
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm%02ds", s/3600, s/60%60, s%60)
}

// redraw erases the status block, prints what print prints (if any) and
// draws the block again under it. Without a terminal it only prints.
func (v *runView) redraw(print func()) {
	if !v.live {
		if print != nil {
			print()
		}
		return
	}
	if v.drawn > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA\x1b[J", v.drawn)
		v.drawn = 0
	}
	if print != nil {
		print()
	}
	v.draw()
}

var stateMarks = map[string]string{
	runrec.StateWaiting: "·", runrec.StateStarting: "○", runrec.StateRunning: "●",
	runrec.StateDone: "✓", runrec.StateReused: "↺", runrec.StateFailed: "✗", runrec.StateSkipped: "-",
}

func (v *runView) draw() {
	for _, name := range v.order {
		m := v.models[name]
		fmt.Fprintf(v.w, "  %s %-*s  %-8s%s\n", stateMarks[m.state], v.width, name, m.state, v.detail(m))
	}
	v.drawn = len(v.order)
	if v.dl != nil && v.dl.FilesDone < v.dl.Files {
		fmt.Fprintf(v.w, "  %s\n", downloadLine(v.dl, v.now().Sub(v.dlStart)))
		v.drawn++
	}
}

// download shows how far the package downloads have got (on a terminal
// only).
func (v *runView) download(ev *flight.RunEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.live {
		return
	}
	if v.dl == nil {
		v.dlStart = v.now()
	}
	v.dl = ev
	v.redraw(nil)
}

// downloadLine is the status block's line for package downloads that
// have been going on for took.
func downloadLine(ev *flight.RunEvent, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "↓ downloading packages: %d of %d files, %s", ev.FilesDone, ev.Files, humanBytes(ev.Bytes))
	if ev.TotalBytes > 0 {
		fmt.Fprintf(&b, " of %s (%d%%)", humanBytes(ev.TotalBytes), min(100, ev.Bytes*100/ev.TotalBytes))
	}
	if s := took.Seconds(); s >= 1 {
		fmt.Fprintf(&b, ", %s/s", humanBytes(int64(float64(ev.Bytes)/s)))
	}
	return b.String()
}

// finish stops the block and prints the outcome.
func (v *runView) finish(rec *runrec.Record, err error) {
	close(v.stop)
	v.done.Wait()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.live {
		v.redraw(nil)
	}
	if rec == nil {
		return
	}
	var reused []string
	for _, m := range rec.Models {
		if m.State == runrec.StateReused {
			reused = append(reused, m.Name)
		}
	}
	if len(reused) > 0 {
		v.printf("reused from earlier runs: %s\n", strings.Join(reused, ", "))
	}
	var fe *function.FunctionError
	if errors.As(err, &fe) && fe.Traceback != "" {
		v.printf("%s raised:\n", fe.Model)
		for _, l := range strings.Split(strings.TrimRight(fe.Traceback, "\n"), "\n") {
			v.printf("  %s\n", l)
		}
	}
	switch rec.Status {
	case runrec.StatusSucceeded:
		var tables []string
		for _, m := range rec.Models {
			if m.Table != "" {
				tables = append(tables, m.Table)
			}
		}
		base := rec.StartCommit // where the run branch started
		if rec.BaseCommit != "" {
			base = rec.BaseCommit
		}
		switch {
		case len(tables) == 0:
			v.printf("run %s succeeded in %.1f s; it materializes no table, so %s is unchanged\n", rec.ID, rec.Duration, rec.Target)
		case rec.EndCommit == base:
			v.printf("run %s succeeded in %.1f s; %s already holds every output (%s), so it is unchanged\n", rec.ID, rec.Duration,
				rec.Target, strings.Join(tables, ", "))
		default:
			v.printf("run %s succeeded in %.1f s: merged into %s as commit %s (%s)\n", rec.ID, rec.Duration, rec.Target,
				short12(rec.EndCommit), strings.Join(tables, ", "))
		}
	case runrec.StatusCancelled, runrec.StatusInterrupted:
		v.printf("run %s interrupted after %.1f s; %s is unchanged\n", rec.ID, rec.Duration, rec.Target)
	}
}

// commas renders n with thousands separators.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
