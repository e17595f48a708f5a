package duckdb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPoolSandbox: a DB opened ahead of demand is sandboxed like one
// opened by Open: once locked it refuses to read a host file, to change a
// setting or to attach a database, with its limits in place.
func TestPoolSandbox(t *testing.T) {
	host := filepath.Join(t.TempDir(), "secret.csv")
	if err := os.WriteFile(host, []byte("a\n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := NewPool(PoolConfig{Options: Options{Threads: 1, MemoryLimit: "256MB"}, Size: 1})
	defer p.Close()
	for range 2 { // the second Get starts the pool filling
		d, err := p.Get()
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
	}
	waitFor(t, "a DB opened ahead", func() bool { return p.Waiting() == 1 })
	d, err := p.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Lock("main", nil); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"SELECT * FROM read_csv(" + Literal(host) + ")",
		"SELECT * FROM read_text('/etc/hostname')",
		"SET enable_external_access=true",
		"ATTACH " + Literal(filepath.Join(t.TempDir(), "x.db")),
	} {
		rd, err := d.Query(context.Background(), sql)
		if err == nil {
			rd.Release()
			t.Errorf("%s: ran in a pooled DB", sql)
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("%s: err %v, want the sandbox's refusal", sql, err)
		}
	}
	rd, err := d.Query(context.Background(), "SELECT current_setting('threads')::VARCHAR || ' ' || current_setting('memory_limit') || ' ' || current_setting('enable_external_access')::VARCHAR")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() {
		t.Fatal(rd.Err())
	}
	got := rd.RecordBatch().Column(0).ValueStr(0)
	if !strings.HasPrefix(got, "1 ") || !strings.HasSuffix(got, " false") || !strings.Contains(got, "MiB") {
		t.Errorf("settings %q, want 1 thread, a 256MB limit, no external access", got)
	}
}

// TestPoolOneQueryOpensNoSpare: a process that asks for one DB opens
// none ahead.
func TestPoolOneQueryOpensNoSpare(t *testing.T) {
	p := NewPool(PoolConfig{Options: Options{Threads: 1}})
	defer p.Close()
	d, err := p.Get()
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	time.Sleep(50 * time.Millisecond)
	if n := p.Waiting(); n != 0 {
		t.Fatalf("%d DBs opened ahead after one query", n)
	}
}

// TestPoolNeverReuses: every Get is a DB of its own, never one handed out
// before (a view one query created is not in the next one); only Take
// hands out a DB again.
func TestPoolNeverReuses(t *testing.T) {
	p := NewPool(PoolConfig{Options: Options{Threads: 1}, Size: 2})
	defer p.Close()
	seen := map[*DB]bool{}
	for i := range 6 {
		d, err := p.Get()
		if err != nil {
			t.Fatal(err)
		}
		if seen[d] {
			t.Fatalf("Get %d returned a DB handed out before", i)
		}
		seen[d] = true
		if err := d.Exec("CREATE VIEW leaked AS SELECT 1 AS x"); err != nil {
			t.Fatalf("Get %d: %v", i, err)
		}
		d.Close()
	}
}

// TestPoolCloseAndIdle: Close closes the DBs waiting (none stays open),
// and DBs nobody asks for within Idle are closed.
func TestPoolCloseAndIdle(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(p *Pool)
	}{
		{"close", func(p *Pool) { p.Close() }},
		{"idle", func(p *Pool) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPool(PoolConfig{Options: Options{Threads: 1}, Size: 2, Idle: 300 * time.Millisecond})
			defer p.Close()
			var tmps []string
			for range 2 {
				d, err := p.Get()
				if err != nil {
					t.Fatal(err)
				}
				d.Close()
			}
			waitFor(t, "the pool to fill", func() bool { return p.Waiting() == 2 })
			p.mu.Lock()
			waiting := append([]*DB(nil), p.ready...)
			p.mu.Unlock()
			tc.stop(p)
			waitFor(t, "the waiting DBs to close", func() bool {
				for _, d := range waiting {
					d.mu.Lock()
					closed := d.closed
					d.mu.Unlock()
					if !closed {
						return false
					}
				}
				return true
			})
			for _, d := range waiting {
				tmps = append(tmps, d.tmp)
			}
			for _, tmp := range tmps {
				if _, err := os.Stat(tmp); !os.IsNotExist(err) {
					t.Errorf("spill directory %s left behind", tmp)
				}
			}
			if n := p.Waiting(); n != 0 {
				t.Errorf("%d DBs still waiting", n)
			}
			// The pool still answers, with a fresh DB.
			d, err := p.Get()
			if err != nil {
				t.Fatal(err)
			}
			d.Close()
		})
	}
}

// TestPoolKeeps: a DB Put back under a key goes to the next Take of that
// key only, at most Keep of them wait (the oldest is closed), and Close
// closes those still waiting; a DB that was never locked is not kept.
func TestPoolKeeps(t *testing.T) {
	p := NewPool(PoolConfig{Options: Options{Threads: 1}, Keep: 2})
	locked := func() *DB {
		d, err := p.Get()
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Lock("main", nil); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b, c := locked(), locked(), locked()
	p.Put("a", a)
	if got := p.Take("b"); got != nil {
		t.Errorf("Take of another key returned a DB")
	}
	if got := p.Take("a"); got != a {
		t.Errorf("Take(a) = %p, want the DB put under a", got)
	}
	if got := p.Take("a"); got != nil {
		t.Errorf("a DB was taken twice")
	}
	p.Put("a", a)
	p.Put("b", b)
	p.Put("c", c) // beyond Keep: a, the oldest, is closed
	if !a.closed || b.closed || c.closed {
		t.Errorf("closed after a third Put: a %v b %v c %v, want only a", a.closed, b.closed, c.closed)
	}
	rd, err := b.Query(context.Background(), "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	rd.Release()
	fresh, err := p.Get()
	if err != nil {
		t.Fatal(err)
	}
	p.Put("d", fresh) // never locked
	if !fresh.closed {
		t.Errorf("an unlocked DB was kept")
	}
	p.Close()
	if !b.closed || !c.closed {
		t.Errorf("Close left kept DBs open")
	}
	d := locked()
	p.Put("a", d)
	if !d.closed {
		t.Errorf("a closed pool kept a DB")
	}
}

// TestReaderStopsInterrupting: once a reader is released, cancelling its
// context interrupts nothing: the next query on the same DB (a DB the
// pool kept) runs to its end.
func TestReaderStopsInterrupting(t *testing.T) {
	d, err := Open(Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Lock("main", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		rd, err := d.Query(ctx, "SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		for rd.Next() {
		}
		rd.Release()
		cancel()
		rd, err = d.Query(context.Background(), "SELECT count(*) FROM range(3000000)")
		if err != nil {
			t.Fatalf("query %d after a cancelled one: %v", i, err)
		}
		for rd.Next() {
		}
		if err := rd.Err(); err != nil {
			t.Fatalf("query %d after a cancelled one: %v", i, err)
		}
		rd.Release()
	}
}
