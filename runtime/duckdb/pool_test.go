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
// before (a view one query created is not in the next one).
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
