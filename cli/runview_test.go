package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

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
