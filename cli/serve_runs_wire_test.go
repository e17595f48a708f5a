package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// TestRunEventsRoundTrip: every pipeline event comes back from the wire
// as it went.
func TestRunEventsRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, ev := range []pipeline.Event{
		{Kind: pipeline.EventState, Model: "m", State: runrec.StateDone, Elapsed: 1500 * time.Millisecond, Rows: 7},
		{Kind: pipeline.EventLog, Model: "m", Line: function.LogLine{Model: "m", Stream: "stderr", Text: "oops", Time: now}},
		{Kind: pipeline.EventPreview, Model: "m", Text: "a\n1\n", Rows: 1},
		{Kind: pipeline.EventMessage, Model: "m", Text: "reused"},
		{Kind: pipeline.EventWarning, Model: "e", Text: "expectation e failed"},
	} {
		got, ok := pipelineEvent(wireEvent(ev))
		if !ok || !reflect.DeepEqual(got, ev) {
			t.Errorf("%+v came back as %+v", ev, got)
		}
	}
	if _, ok := pipelineEvent(&flight.RunEvent{Type: flight.EventNotice}); ok {
		t.Error("a notice is not a pipeline event")
	}
}

// TestRunFailureRoundTrip: a failure sent on the wire exits as the run's
// own error does: the same text and the same exit code.
func TestRunFailureRoundTrip(t *testing.T) {
	t.Parallel()
	rec := &runrec.Record{ID: "0123456789abcdef", Target: "alice.dev", RunBranch: "alice.run-0123", BranchKept: true}
	for name, err := range map[string]error{
		"model":     &pipeline.RunError{ID: rec.ID, Model: "m", Err: &function.FunctionError{Model: "m", Traceback: "ValueError: x", Message: "x"}},
		"conflict":  &pipeline.RunError{ID: rec.ID, Err: errdefs.New(errdefs.ErrConflict, "tables changed on both sides")},
		"cancelled": context.Canceled,
		"other":     errors.New("disk full"),
	} {
		want := runFailure(rec, err)
		f := runFailureOf(rec, err)
		got := failureError(f)
		if got.Error() != want.Error() || exitCode(got) != exitCode(want) {
			t.Errorf("%s: %q exit %d, want %q exit %d", name, got, exitCode(got), want, exitCode(want))
		}
		if name == "model" && (f.Model != "m" || f.Traceback != "ValueError: x") {
			t.Errorf("traceback lost: %+v", f)
		}
	}
	if runFailureOf(rec, nil) != nil || failureError(nil) != nil {
		t.Error("a run that did not fail has a failure")
	}
}

// TestClientPaths: errors about a project a client sent name its files
// under the client's folder.
func TestClientPaths(t *testing.T) {
	t.Parallel()
	err := errdefs.WithHint(errdefs.ErrInvalidArgument, "see /tmp/p1/lakehouse.yml", "/tmp/p1/models.py:3: bad\n  /tmp/p1/a.sql:1: worse")
	for clientDir, want := range map[string]string{
		"proj":      "proj/models.py:3: bad\n  proj/a.sql:1: worse; see proj/lakehouse.yml",
		"/home/a/p": "/home/a/p/models.py:3: bad\n  /home/a/p/a.sql:1: worse; see /home/a/p/lakehouse.yml",
		".":         "models.py:3: bad\n  a.sql:1: worse; see lakehouse.yml",
	} {
		got := clientPaths(err, "/tmp/p1", clientDir)
		if got.Error() != want || !errdefs.Is(got, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %q", clientDir, got)
		}
	}
	plain := errors.New("nothing about the folder")
	if clientPaths(plain, "/tmp/p1", "x") != plain {
		t.Error("an error naming no file changed")
	}
}

// TestPackProject: what a run ships goes, links to files as the files,
// and comes out the same.
func TestPackProject(t *testing.T) {
	t.Parallel()
	dir := writeRunProject(t, map[string]string{
		"lakehouse.yml":         "project:\n  name: p\n",
		"models.py":             "x = 1\n",
		"sub/b.sql":             "SELECT 1\n",
		".git/config":           "hidden\n",
		"__pycache__/m.pyc":     "cache\n",
		"data.parquet":          "not code\n",
		"venv/.hidden/x.py":     "hidden folder\n",
		"notes/readme.txt":      "text\n",
		"elsewhere/shared.py":   "y = 2\n",
		"elsewhere/.secret.txt": "no\n",
	})
	if err := os.Symlink(filepath.Join(dir, "elsewhere", "shared.py"), filepath.Join(dir, "linked.py")); err != nil {
		t.Fatal(err)
	}
	b, err := packProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := unpackProject(b, t.TempDir(), defaultProjectLimits)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(out, p)
			if !d.Type().IsRegular() {
				t.Errorf("%s is not a regular file", rel)
			}
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(got)
	want := "elsewhere/shared.py lakehouse.yml linked.py models.py notes/readme.txt sub/b.sql"
	if strings.Join(got, " ") != want {
		t.Errorf("unpacked %v, want %s", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "linked.py")); string(b) != "y = 2\n" {
		t.Errorf("linked.py holds %q", b)
	}
}

// FuzzUnpackProject: whatever a client sends, nothing is written outside
// the folder, and a refused project leaves nothing.
func FuzzUnpackProject(f *testing.F) {
	good, err := packProject(testdataDir(nil, "pipelines", "sample"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("\x1f\x8b garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		scratch := t.TempDir()
		dir, err := unpackProject(data, scratch, defaultProjectLimits)
		ents, _ := os.ReadDir(scratch)
		if err != nil {
			if len(ents) != 0 {
				t.Fatalf("a refused project left %d entries", len(ents))
			}
			return
		}
		if len(ents) != 1 || filepath.Join(scratch, ents[0].Name()) != dir {
			t.Fatalf("unpacked beside its folder: %v", ents)
		}
	})
}
