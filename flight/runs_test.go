package flight

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// fakeRuns answers the run actions from memory.
type fakeRuns struct {
	got  []RunBody
	recs map[string]*runrec.Record
}

func (f *fakeRuns) Run(ctx context.Context, b RunBody, send func(*RunEvent) error) error {
	f.got = append(f.got, b)
	rec := &runrec.Record{ID: "0123456789abcdef", Target: b.Ref, User: b.User, Status: runrec.StatusRunning,
		Params: map[string]any{"n": json.Number("1000000")}}
	if err := send(&RunEvent{Type: EventStarted, RunID: rec.ID, Record: rec}); err != nil {
		return err
	}
	send(&RunEvent{Type: EventLog, Model: "m", Stream: "stdout", Text: "hello"})
	rec.Status = runrec.StatusFailed
	return send(&RunEvent{Type: EventFinished, RunID: rec.ID, Record: rec,
		Error: &RunFailure{Message: "run failed in m", Class: "failed", Hint: "see logs", Model: "m", Traceback: "ValueError: x"}})
}

func (f *fakeRuns) Rerun(ctx context.Context, b RerunBody, send func(*RunEvent) error) error {
	return errdefs.New(errdefs.ErrFailedPrecondition, "no rerun here")
}

func (f *fakeRuns) GetRun(ctx context.Context, id string) (*runrec.Record, error) {
	if r := f.recs[id]; r != nil {
		return r, nil
	}
	return nil, errdefs.WithHint(errdefs.ErrNotFound, "list runs with `lakehouse runs ls`", "no run %s", id)
}

func (f *fakeRuns) ListRuns(ctx context.Context, limit int) ([]*runrec.Record, error) {
	return nil, nil
}

func (f *fakeRuns) RunLogs(ctx context.Context, b RunLogsBody, send func(runrec.LogLine) error) error {
	for i := range 3 {
		if err := send(runrec.LogLine{Model: "m", Stream: "stdout", Text: strings.Repeat("x", i)}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeRuns) CancelRun(ctx context.Context, id string) (*CancelRunResult, error) {
	return &CancelRunResult{ID: id, Status: "cancelling"}, nil
}

func (f *fakeRuns) DeleteRun(ctx context.Context, id string) (*DeleteRunResult, error) {
	return &DeleteRunResult{Deleted: id}, nil
}

// namedKeys authenticates keys named after their user and role:
// "alice:writer".
type namedKeys struct{}

func (namedKeys) Authenticate(ctx context.Context, key string) (Principal, error) {
	user, role, ok := strings.Cut(key, ":")
	if !ok {
		return Principal{}, errdefs.New(errdefs.ErrUnauthenticated, "no key")
	}
	return Principal{User: user, Role: Role(role)}, nil
}

func serveRuns(t *testing.T, opts Options) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(opts)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func dialRuns(t *testing.T, addr, key string) *Client {
	t.Helper()
	c, err := Dial(addr, DialOptions{APIKey: key, Author: "claimed"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRunActions: the run actions over a real connection: events in
// order, numbers as written, errors with class and hint, the user a run
// is recorded as, and who may run into which branch.
func TestRunActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := &fakeRuns{recs: map[string]*runrec.Record{
		"aaaa": {ID: "aaaa", User: "bob", Target: "bob.dev"},
		"bbbb": {ID: "bbbb", User: "alice", Target: "alice.dev"},
	}}
	c := dialRuns(t, serveRuns(t, Options{Runs: fake}), "")

	var events []*RunEvent
	if err := c.Run(ctx, RunBody{Ref: "main", Project: []byte{1, 2}}, func(ev *RunEvent) error {
		events = append(events, ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
	}
	if got := strings.Join(types, " "); got != "started log finished" {
		t.Fatalf("events %s", got)
	}
	if n := events[0].Record.Params["n"]; n != json.Number("1000000") {
		t.Errorf("parameter n came back as %#v", n)
	}
	if f := events[2].Error; f == nil || f.Traceback != "ValueError: x" || f.Hint != "see logs" {
		t.Errorf("failure %+v", f)
	}
	if fake.got[0].User != "claimed" || string(fake.got[0].Project) != "\x01\x02" {
		t.Errorf("without keys the run is the client's user: %+v", fake.got[0])
	}

	var lines []string
	if err := c.RunLogs(ctx, RunLogsBody{ID: "aaaa"}, func(l runrec.LogLine) error {
		lines = append(lines, l.Text)
		return nil
	}); err != nil || len(lines) != 3 {
		t.Errorf("logs %q: %v", lines, err)
	}
	if _, err := c.GetRun(ctx, "cccc"); !errdefs.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "runs ls") {
		t.Errorf("unknown run: %v", err)
	}
	if err := c.Rerun(ctx, RerunBody{RunID: "aaaa"}, func(*RunEvent) error { return nil }); !errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("rerun: %v", err)
	}
	if err := c.Do(ctx, ActionRun, json.RawMessage(`{"ref": 3}`), nil); !errdefs.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("malformed body: %v", err)
	}

	// A server without runs says so.
	none := dialRuns(t, serveRuns(t, Options{}), "")
	if _, err := none.ListRuns(ctx, 0); !errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("no runs: %v", err)
	}

	// With keys: the key's user runs; a writer runs into its own branches
	// and main, and cancels its own runs only; a reader runs nothing.
	addr := serveRuns(t, Options{Runs: fake, Auth: namedKeys{}})
	alice, reader := dialRuns(t, addr, "alice:writer"), dialRuns(t, addr, "rita:reader")
	run := func(c *Client, ref string) error {
		return c.Run(ctx, RunBody{Ref: ref}, func(*RunEvent) error { return nil })
	}
	for _, ref := range []string{"alice.dev", "main"} {
		if err := run(alice, ref); err != nil {
			t.Errorf("writer alice runs into %s: %v", ref, err)
		}
	}
	if got := fake.got[len(fake.got)-1].User; got != "alice" {
		t.Errorf("with keys the run is recorded as %q, want alice", got)
	}
	for _, c2 := range []struct {
		c   *Client
		ref string
	}{{alice, "bob.dev"}, {reader, "rita.dev"}} {
		if err := run(c2.c, c2.ref); !errdefs.Is(err, errdefs.ErrPermissionDenied) {
			t.Errorf("run into %s: %v, want permission denied", c2.ref, err)
		}
	}
	if _, err := alice.CancelRun(ctx, "aaaa"); !errdefs.Is(err, errdefs.ErrPermissionDenied) {
		t.Errorf("alice cancels bob's run: %v", err)
	}
	if _, err := alice.CancelRun(ctx, "bbbb"); err != nil {
		t.Errorf("alice cancels her run: %v", err)
	}
	if _, err := reader.DeleteRun(ctx, "bbbb"); !errdefs.Is(err, errdefs.ErrPermissionDenied) {
		t.Errorf("a reader deletes a run: %v", err)
	}
	if _, err := reader.ListRuns(ctx, 0); err != nil {
		t.Errorf("a reader lists runs: %v", err)
	}
}

// limitedRuns are fakeRuns that take projects of at most limit bytes.
type limitedRuns struct {
	fakeRuns
	limit int64
}

func (l *limitedRuns) MaxProjectBytes() int64 { return l.limit }

// TestRunBodyTooLarge: a run request larger than any project within the
// server's limit makes is refused before it is decoded (garbage that
// large gets the size error, not a JSON one); one that could hold such a
// project is decoded as before.
func TestRunBodyTooLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := &limitedRuns{limit: 1 << 10}
	c := dialRuns(t, serveRuns(t, Options{Runs: fake}), "")
	big := strings.Repeat("x", runBodySlack+4<<10)
	err := c.Do(ctx, ActionRun, json.RawMessage(`"`+big+`"`), nil)
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "more than a project within the limit of 1.0 KiB makes") {
		t.Fatalf("a run request of %d bytes: %v", len(big), err)
	}
	if msg, hint := errdefs.Split(err); !strings.Contains(hint, "--max-project-bytes") {
		t.Fatalf("no hint of the limit's flag: %s (%s)", msg, hint)
	}
	err = c.Do(ctx, ActionRun, json.RawMessage(`"`+big[:runBodySlack]+`"`), nil)
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) || strings.Contains(err.Error(), "more than a project") {
		t.Fatalf("a run request within the bound: %v, want the body's own error", err)
	}
	if len(fake.got) != 0 {
		t.Fatalf("runs started: %v", fake.got)
	}
}
