package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// fakeClock is a runView clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTestView(tty bool) (*runView, *fakeClock, *bytes.Buffer) {
	var out bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &out, StdoutTTY: tty}
	v := newRunView(e, &planner.Plan{Models: []*planner.Node{{Name: "slow", Kind: "model"}, {Name: "fast", Kind: "model"}}}, "main")
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	v.now = clock.now
	return v, clock, &out
}

// TestRunViewElapsedAndQuiet: a running model's elapsed time grows with the
// clock, and after a quiet period without output its line says so; a log
// line resets that.
func TestRunViewElapsedAndQuiet(t *testing.T) {
	t.Parallel()
	v, clock, _ := newTestView(true)
	v.event(pipeline.Event{Kind: pipeline.EventState, Model: "slow", State: runrec.StateStarting})
	clock.add(200 * time.Millisecond)
	v.event(pipeline.Event{Kind: pipeline.EventState, Model: "slow", State: runrec.StateRunning})
	m := v.models["slow"]
	for _, c := range []struct {
		step time.Duration
		log  bool
		want string
	}{
		{0, false, "  0.2s"},
		{5 * time.Second, false, "  5.2s"},
		{55 * time.Second, false, "  1m00s, no output for 1m00s"},
		{0, true, "  1m00s"},
		{59 * time.Second, false, "  1m59s"},
		{66 * time.Second, false, "  3m05s, no output for 2m05s"},
		{time.Hour, false, "  1h03m05s, no output for 1h02m05s"},
	} {
		clock.add(c.step)
		if c.log {
			v.event(pipeline.Event{Kind: pipeline.EventLog, Model: "slow", Line: function.LogLine{Model: "slow", Text: "hi"}})
		}
		if got := v.detail(m); got != c.want {
			t.Errorf("after %s: detail %q, want %q", clock.t.Sub(m.started), got, c.want)
		}
	}
	// The threshold is the view's own.
	v.quiet = 2 * time.Hour
	if got := v.detail(m); strings.Contains(got, "no output") {
		t.Errorf("quiet 2h: detail %q", got)
	}
}

// TestRunViewPeriodicLine: without a terminal, a model running for a quiet
// period gets a line each period, with its true elapsed time.
func TestRunViewPeriodicLine(t *testing.T) {
	t.Parallel()
	v, clock, out := newTestView(false)
	v.event(pipeline.Event{Kind: pipeline.EventState, Model: "slow", State: runrec.StateRunning, Elapsed: 300 * time.Millisecond})
	v.event(pipeline.Event{Kind: pipeline.EventState, Model: "fast", State: runrec.StateRunning})
	clock.add(2 * time.Second)
	v.event(pipeline.Event{Kind: pipeline.EventState, Model: "fast", State: runrec.StateDone, Rows: 3})
	for i := 0; i < 4*60*2+10; i++ { // two minutes of ticks
		clock.add(250 * time.Millisecond)
		v.update()
	}
	v.event(pipeline.Event{Kind: pipeline.EventState, Model: "slow", State: runrec.StateFailed})
	want := "" +
		"slow  running  0.3s\n" +
		"fast  running  0.0s\n" +
		"fast  done  2.0s, 3 rows\n" +
		"slow  running  1m00s, no output for 1m00s\n" +
		"slow  running  2m00s, no output for 2m00s\n" +
		"slow  failed  2m04s\n"
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestElapsed(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{0: "0.0s", 1500 * time.Millisecond: "1.5s", 59 * time.Second: "59.0s",
		time.Minute: "1m00s", 192 * time.Second: "3m12s", 3725 * time.Second: "1h02m05s", -time.Second: "0.0s"} {
		if got := elapsed(d); got != want {
			t.Errorf("elapsed(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestRunViewDownloads: on a terminal, package downloads show as a line
// under the status block (files, bytes, percent, throughput) until they
// are all done; elsewhere they print nothing.
func TestRunViewDownloads(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	events := []struct {
		step time.Duration
		ev   flight.RunEvent
		want string // the block's last line after the event
	}{
		{0, flight.RunEvent{Files: 1, TotalBytes: 55 * mib}, "  ↓ downloading packages: 0 of 1 files, 0 B of 55.0 MiB (0%)"},
		{500 * time.Millisecond, flight.RunEvent{Files: 3, Bytes: 5 * mib, TotalBytes: 80 * mib}, "  ↓ downloading packages: 0 of 3 files, 5.0 MiB of 80.0 MiB (6%)"},
		{3500 * time.Millisecond, flight.RunEvent{Files: 3, FilesDone: 2, Bytes: 40 * mib, TotalBytes: 80 * mib}, "  ↓ downloading packages: 2 of 3 files, 40.0 MiB of 80.0 MiB (50%), 10.0 MiB/s"},
		{4 * time.Second, flight.RunEvent{Files: 3, FilesDone: 3, Bytes: 80 * mib, TotalBytes: 80 * mib}, "  · fast  waiting "}, // the block alone
	}
	for _, tty := range []bool{true, false} {
		v, clock, out := newTestView(tty)
		for _, e := range events {
			clock.add(e.step)
			out.Reset()
			ev := e.ev
			ev.Type = flight.EventDownload
			v.download(&ev)
			if !tty {
				if out.Len() != 0 {
					t.Errorf("without a terminal: printed %q", out.String())
				}
				continue
			}
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if got := lines[len(lines)-1]; got != e.want {
				t.Errorf("last line %q, want %q", got, e.want)
			}
		}
	}
}

// TestDownloadEvents: a run sends its download progress when a download
// starts or ends, and otherwise at most every downloadEventEvery.
func TestDownloadEvents(t *testing.T) {
	t.Parallel()
	var sent []flight.RunEvent
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	report := downloadEvents(func(ev *flight.RunEvent) error { sent = append(sent, *ev); return nil }, clock.now)
	report(envcache.DownloadProgress{Files: 1, TotalBytes: 100})            // a start: sent
	report(envcache.DownloadProgress{Files: 1, Bytes: 10, TotalBytes: 100}) // too soon
	clock.add(downloadEventEvery)
	report(envcache.DownloadProgress{Files: 1, Bytes: 20, TotalBytes: 100})           // sent
	report(envcache.DownloadProgress{Files: 1, Done: 1, Bytes: 100, TotalBytes: 100}) // an end: sent
	var bytes []int64
	for _, ev := range sent {
		if ev.Type != flight.EventDownload {
			t.Fatalf("event type %q", ev.Type)
		}
		bytes = append(bytes, ev.Bytes)
	}
	if len(bytes) != 3 || bytes[0] != 0 || bytes[1] != 20 || bytes[2] != 100 {
		t.Errorf("sent the reports of %v bytes, want [0 20 100]", bytes)
	}
}
