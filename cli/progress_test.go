package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// TestLiveLineRender feeds an import's progress to the live line and
// checks each line it draws.
func TestLiveLineRender(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const mib = 1 << 20
	tests := []struct {
		name  string
		at    time.Duration
		frame int
		p     *catalog.ImportProgress
		want  string
	}{
		{"before any report", 0, 0, nil, "| importing 1 source into s.t on main … 0s"},
		{"nothing read yet", 300 * time.Millisecond, 1, &catalog.ImportProgress{TotalBytes: 400 * mib},
			"/ importing 1 source into s.t on main … 0s"},
		{"under a second: no throughput", 600 * time.Millisecond, 2, &catalog.ImportProgress{Rows: 1, Bytes: 1000, TotalBytes: 400 * mib},
			"- importing 1 source into s.t on main … 1s: 1 row, 1000 B of 400.0 MiB (0%)"},
		{"a quarter", 10 * time.Second, 3, &catalog.ImportProgress{Rows: 1_250_000, Bytes: 100 * mib, TotalBytes: 400 * mib},
			`\ importing 1 source into s.t on main … 10s: 1250000 rows, 100.0 MiB of 400.0 MiB (25%), 10.0 MiB/s, 125000 rows/s`},
		{"all read", 40 * time.Second, 4, &catalog.ImportProgress{Rows: 5_000_000, Bytes: 400 * mib, TotalBytes: 400 * mib},
			"| importing 1 source into s.t on main … 40s: 5000000 rows, 400.0 MiB of 400.0 MiB (100%), 10.0 MiB/s, 125000 rows/s"},
		{"no total known", 2 * time.Second, 0, &catalog.ImportProgress{Rows: 10, Bytes: 2048},
			"| importing 1 source into s.t on main … 2s: 10 rows, 2.0 KiB, 1.0 KiB/s, 5 rows/s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			l := newLiveLine(&bytes.Buffer{}, "importing 1 source into s.t on main", func() time.Time { return now })
			now = t0.Add(tc.at)
			if tc.p != nil {
				l.importProgress(*tc.p)
			}
			if got := l.render(tc.frame); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestLiveLineDraws checks the line is redrawn in place and cleared at the
// end.
func TestLiveLineDraws(t *testing.T) {
	var out syncBuffer
	l := newLiveLine(&out, "importing", time.Now)
	go l.loop(time.Millisecond)
	l.importProgress(catalog.ImportProgress{Rows: 3, Bytes: 30, TotalBytes: 60})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "3 rows, 30 B of 60 B (50%)") {
		if time.Now().After(deadline) {
			t.Fatalf("the line never showed the progress:\n%q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	l.stop()
	s := out.String()
	if !strings.HasPrefix(s, "\r\x1b[K| importing … 0s") || !strings.HasSuffix(s, "\r\x1b[K") {
		t.Errorf("not drawn in place, or not cleared at the end:\n%q", s)
	}
}

// TestProgressOnlyOnATerminal: no live line when stderr is not a terminal,
// or the output is JSON.
func TestProgressOnlyOnATerminal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tty    bool
		output string
	}{{"not a terminal", false, outputTable}, {"json on a terminal", true, outputJSON}} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			e := &Env{Stderr: &out, StderrTTY: tc.tty, Output: tc.output}
			l := e.progress("importing")
			if l != nil {
				t.Fatalf("a live line on %s", tc.name)
			}
			l.importProgress(catalog.ImportProgress{Rows: 1, Bytes: 1, TotalBytes: 1})
			time.Sleep(10 * time.Millisecond)
			l.stop()
			if out.Len() != 0 {
				t.Errorf("printed %q", out.String())
			}
		})
	}
}
