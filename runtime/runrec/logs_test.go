package runrec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogLimit: lines past the limit are counted and dropped, and Close
// writes one line saying how many.
func TestLogLimit(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &Record{ID: NewID(time.Now()), Status: StatusRunning}
	if err := s.Create(r); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		limit int64
	}{
		{name: "limited", limit: 10_000},
		{name: "none", limit: -1},
		{name: "default", limit: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(filepath.Join(s.dir(r.ID), "logs.jsonl"))
			l, err := s.OpenLogs(r.ID)
			if err != nil {
				t.Fatal(err)
			}
			l.SetLimit(c.limit)
			const lines = 1000
			kept := 0
			for i := range lines {
				if l.Write(LogLine{Time: time.Now(), Model: "m", Stream: "stdout", Text: fmt.Sprintf("line %04d %s", i, strings.Repeat("x", 40))}) {
					kept++
				}
			}
			dropped := l.Dropped()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			var got []LogLine
			if err := s.ReadLogs(r.ID, func(ll LogLine) error { got = append(got, ll); return nil }); err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(filepath.Join(s.dir(r.ID), "logs.jsonl"))
			if c.limit != 10_000 {
				if dropped != 0 || kept != lines || len(got) != lines {
					t.Fatalf("kept %d, dropped %d, read %d lines", kept, dropped, len(got))
				}
				return
			}
			if kept == 0 || kept+int(dropped) != lines || len(got) != kept+1 {
				t.Fatalf("kept %d, dropped %d of %d; read %d lines", kept, dropped, lines, len(got))
			}
			if st.Size() > c.limit+200 {
				t.Errorf("log is %d bytes, limit %d", st.Size(), c.limit)
			}
			// Kept lines are the first ones, in order.
			if got[kept-1].Text[:9] != fmt.Sprintf("line %04d", kept-1) {
				t.Errorf("last kept line %q", got[kept-1].Text)
			}
			last := got[len(got)-1]
			want := fmt.Sprintf("log limit of 10 KB reached: %d further lines (", dropped)
			if last.Stream != "lakehouse" || last.Model != "" || !strings.HasPrefix(last.Text, want) ||
				!strings.HasSuffix(last.Text, "dropped; LAKEHOUSE_RUN_LOG_LIMIT sets the limit") {
				t.Errorf("last line %+v, want it to start with %q", last, want)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{90: "90 B", 10_000: "10 KB", 100_000_000: "100 MB", 3_240_000: "3.2 MB", 3e9: "3 GB", 1999: "2 KB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
