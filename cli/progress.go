package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// liveLine is a line on stderr redrawn in place while long work runs: a
// spinner, what runs and for how long, and, once the work reports it,
// how far it has read its input (rows, bytes and percent of the input)
// and at what throughput. A nil *liveLine does nothing.
type liveLine struct {
	w     io.Writer
	msg   string
	start time.Time
	now   func() time.Time

	mu  sync.Mutex
	imp *catalog.ImportProgress // nil until the work reports

	done     chan struct{}
	finished chan struct{}
}

// progressEvery is how often the live line is redrawn.
const progressEvery = 200 * time.Millisecond

// progress starts a live line on stderr, only when stderr is a terminal
// and the output is not JSON (else it returns nil: nothing is printed).
// Stop it with stop.
func (e *Env) progress(msg string) *liveLine {
	if !e.StderrTTY || e.JSON() {
		return nil
	}
	l := newLiveLine(e.Stderr, msg, time.Now)
	go l.loop(progressEvery)
	return l
}

func newLiveLine(w io.Writer, msg string, now func() time.Time) *liveLine {
	return &liveLine{w: w, msg: msg, start: now(), now: now, done: make(chan struct{}), finished: make(chan struct{})}
}

// importProgress is an import's progress callback.
func (l *liveLine) importProgress(p catalog.ImportProgress) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.imp = &p
	l.mu.Unlock()
}

func (l *liveLine) loop(every time.Duration) {
	defer close(l.finished)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		io.WriteString(l.w, "\r\x1b[K"+l.render(i))
		select {
		case <-l.done:
			io.WriteString(l.w, "\r\x1b[K")
			return
		case <-tick.C:
		}
	}
}

// stop clears the line.
func (l *liveLine) stop() {
	if l == nil {
		return
	}
	close(l.done)
	<-l.finished
}

// render is the line's text at its frame-th redraw.
func (l *liveLine) render(frame int) string {
	l.mu.Lock()
	var imp *catalog.ImportProgress
	if l.imp != nil {
		p := *l.imp
		imp = &p
	}
	l.mu.Unlock()
	const frames = `|/-\`
	elapsed := l.now().Sub(l.start)
	var b strings.Builder
	fmt.Fprintf(&b, "%c %s … %s", frames[frame%len(frames)], l.msg, elapsed.Round(time.Second))
	if imp != nil && (imp.Rows > 0 || imp.Bytes > 0) {
		fmt.Fprintf(&b, ": %s, %s", plural(imp.Rows, "row", "rows"), humanBytes(imp.Bytes))
		if imp.TotalBytes > 0 {
			fmt.Fprintf(&b, " of %s (%d%%)", humanBytes(imp.TotalBytes), min(100, imp.Bytes*100/imp.TotalBytes))
		}
		if s := elapsed.Seconds(); s >= 1 {
			fmt.Fprintf(&b, ", %s/s, %d rows/s", humanBytes(int64(float64(imp.Bytes)/s)), int64(float64(imp.Rows)/s))
		}
	}
	return b.String()
}
