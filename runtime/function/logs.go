package function

import (
	"bytes"
	"fmt"
	"sync"
	"time"
)

// maxLine bounds one log line; longer output is cut into several lines.
const maxLine = 64 << 10

// LineWriter is an io.Writer that hands complete lines to a LogSink.
// Give stdout and stderr a LineWriter each.
type LineWriter struct {
	model, stream string
	sink          LogSink
	mu            sync.Mutex
	buf           []byte
	// First is when the first line arrived (zero if none yet).
	First time.Time
	// step, if set, handles a chain's step marker line (marker, then
	// "<i> <rows>": step i started); false if the line is not a valid
	// marker.
	step   func(i int, rows int64) bool
	marker []byte
}

// NewLineWriter returns a writer for one stream of model.
func NewLineWriter(model, stream string, sink LogSink) *LineWriter {
	return &LineWriter{model: model, stream: stream, sink: sink}
}

func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= maxLine {
				w.emit(w.buf[:maxLine])
				w.buf = w.buf[maxLine:]
				continue
			}
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Flush emits a last line without a newline.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

func (w *LineWriter) emit(b []byte) {
	// The marker starts a line of its own, or follows what the function
	// printed without a newline (the token keeps user text from passing
	// for one).
	if at := bytes.Index(b, w.marker); w.step != nil && at >= 0 {
		var i int
		var rows int64
		if n, err := fmt.Sscanf(string(b[at+len(w.marker):]), "%d %d", &i, &rows); err == nil && n == 2 {
			if at > 0 {
				w.line(b[:at])
			}
			if w.step(i, rows) {
				return
			}
			b = b[at:]
		}
	}
	w.line(b)
}

// line hands one line to the sink.
func (w *LineWriter) line(b []byte) {
	now := time.Now()
	if w.First.IsZero() {
		w.First = now
	}
	if w.sink != nil {
		w.sink(LogLine{Model: w.model, Stream: w.stream, Text: string(bytes.TrimSuffix(b, []byte("\r"))), Time: now})
	}
}
