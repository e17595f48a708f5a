package duckdb

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func TestLimits(t *testing.T) {
	old := memAvailable
	defer func() { memAvailable = old }()
	memAvailable = func() int64 { return 10 << 30 }
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name    string
		getenv  func(string) string
		memory  int64
		threads int
		want    Limits
		wantErr bool
	}{
		{name: "defaults", getenv: env(), want: Limits{MemoryBytes: 8 << 30}},
		{name: "env", getenv: env(EnvMemory, "2GiB", EnvThreads, "3"), want: Limits{MemoryBytes: 2 << 30, Threads: 3}},
		{name: "env above free memory", getenv: env(EnvMemory, "64GiB"), want: Limits{MemoryBytes: 8 << 30}},
		{name: "request wins over env", getenv: env(EnvMemory, "2GB", EnvThreads, "3"), memory: 1 << 30, threads: 1,
			want: Limits{MemoryBytes: 1 << 30, Threads: 1}},
		{name: "request above free memory", getenv: env(), memory: 20 << 30, want: Limits{MemoryBytes: 8 << 30}},
		{name: "bad memory", getenv: env(EnvMemory, "lots"), wantErr: true},
		{name: "bad threads", getenv: env(EnvThreads, "0"), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := limits(tc.getenv, tc.memory, tc.threads)
			if tc.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("limits = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]int64{"100": 100, "4GB": 4e9, "512 MiB": 512 << 20, "1.5GiB": 3 << 29, "64kb": 64e3, "2b": 2} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "GB", "-1GB", "4XB", "0", "nan", "NaN GiB", "inf", "+Inf", "1e30"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) succeeded", s)
		}
	}
}

// TestOpenAppliesLimits: the settings reach DuckDB.
func TestOpenAppliesLimits(t *testing.T) {
	threads, mem := settings(t, Options{Getenv: func(k string) string {
		return map[string]string{EnvMemory: "300MiB", EnvThreads: "2"}[k]
	}})
	if threads != "2" {
		t.Errorf("threads = %s, want 2", threads)
	}
	if mem != "300.0 MiB" {
		t.Errorf("memory_limit = %s, want 300.0 MiB", mem)
	}
}

// TestSetThreads: SetThreads reaches DuckDB before Lock and is refused
// after it.
func TestSetThreads(t *testing.T) {
	if got, want := StreamThreads(), max(runtime.NumCPU()-1, 1); got != want {
		t.Errorf("StreamThreads() = %d, want %d", got, want)
	}
	db, err := Open(Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.SetThreads(1); err != nil {
		t.Fatal(err)
	}
	if got, _ := lockedSettings(t, db); got != "1" {
		t.Errorf("threads = %s, want 1", got)
	}
	if err := db.SetThreads(2); err == nil {
		t.Error("SetThreads after Lock succeeded")
	}
}

// settings opens a DB with opts and returns its threads and memory_limit
// settings.
func settings(t *testing.T, opts Options) (threads, memory string) {
	t.Helper()
	db, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return lockedSettings(t, db)
}

// lockedSettings locks db and returns its threads and memory_limit
// settings.
func lockedSettings(t *testing.T, db *DB) (threads, memory string) {
	t.Helper()
	if err := db.Lock("main", nil); err != nil {
		t.Fatal(err)
	}
	r, err := db.Query(context.Background(), "SELECT current_setting('threads')::BIGINT AS t, current_setting('memory_limit') AS m")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	rec := r.RecordBatch()
	// Cloned: the values point into the batch, released on return.
	return strings.Clone(rec.Column(0).ValueStr(0)), strings.Clone(rec.Column(1).ValueStr(0))
}

// TestCancelStopsAggregate: cancelling the context interrupts a long
// aggregate promptly (Ctrl-C in `lakehouse query`).
func TestCancelStopsAggregate(t *testing.T) {
	db, err := Open(Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Lock("main", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	at := make(chan time.Time, 1)
	time.AfterFunc(300*time.Millisecond, func() { at <- time.Now(); cancel() })
	r, err := db.Query(ctx, "SELECT sum(i * 2) AS s, count(DISTINCT i % 1000) AS d FROM range(10000000000) t(i)")
	if err == nil {
		for r.Next() {
		}
		err = r.Err()
		r.Release()
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(<-at); d > 5*time.Second {
		t.Fatalf("query returned %s after cancel", d)
	}
}
