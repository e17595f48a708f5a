package scancache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/scancache/internal/pqtest"
	"golang.org/x/sys/unix"
)

// slowSource is a dirSource whose range requests take a while, so that
// concurrent fetches overlap.
func slowSource(dir string) *dirSource {
	return &dirSource{dir: dir, afterRead: func() { time.Sleep(20 * time.Millisecond) }}
}

// singleFetch is what one Materialize of cols fetches into an empty cache.
func singleFetch(t *testing.T, src *dirSource, key string, cols []string) int64 {
	t.Helper()
	c := openCache(t, 0)
	_, st, err := c.Materialize(context.Background(), src, key, cols)
	if err != nil {
		t.Fatal(err)
	}
	return st.BytesFetched
}

// TestConcurrentReadersFetchOnce: goroutines needing the same missing
// column at once, through one Cache and through several (as separate
// processes would), fetch it once between them.
func TestConcurrentReadersFetchOnce(t *testing.T) {
	t.Parallel()
	src := slowSource(t.TempDir())
	full := filepath.Join(src.dir, "t.parquet")
	writeArrowParquet(t, full, 20000, 4000, 11)
	base := []string{"id"}
	cols := []string{"id", "note"}
	want := singleFetch(t, src, "t.parquet", cols) - singleFetch(t, src, "t.parquet", base)

	dir := t.TempDir()
	shared, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	local, _, err := shared.Materialize(context.Background(), src, "t.parquet", base)
	if err != nil {
		t.Fatal(err)
	}
	shared.Release(local)
	src.reset()

	const n = 6
	var wg sync.WaitGroup
	start := make(chan struct{})
	stats := make([]FetchStats, n)
	errs := make([]error, n)
	paths := make([]string, n)
	for i := range n {
		c := shared
		if i%2 == 1 { // its own Cache: its own locks, like another process
			if c, err = Open(dir, 0); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			paths[i], stats[i], errs[i] = c.Materialize(context.Background(), src, "t.parquet", cols)
		}()
	}
	close(start)
	wg.Wait()
	var fetched int64
	misses := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		fetched += stats[i].BytesFetched
		if !stats[i].Hit {
			misses++
		}
	}
	if fetched != want || src.bytes.Load() != want || misses != 1 {
		t.Errorf("%d readers fetched %d bytes (source served %d) in %d misses; one fetch is %d bytes",
			n, fetched, src.bytes.Load(), misses, want)
	}
	q := pqtest.Scan(cols)
	if pqtest.Query(t, paths[0], q) != pqtest.Query(t, full, q) {
		t.Error("sparse file differs from the full file")
	}
}

// helperEnv makes the test binary a cache client (TestHelperProcess).
const helperEnv = "SCANCACHE_TEST_HELPER"

type helperArgs struct {
	Cache, Source, Key string
	Columns            []string
	Start              time.Time
}

// TestHelperProcess is one process of TestTwoProcessesFetchOnce: it waits
// for the start time, materializes and prints its FetchStats as JSON.
func TestHelperProcess(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		return // not a helper run
	}
	var a helperArgs
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		t.Fatal(err)
	}
	c, err := Open(a.Cache, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(time.Until(a.Start))
	_, st, err := c.Materialize(context.Background(), slowSource(a.Source), a.Key, a.Columns)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st)
	fmt.Printf("STATS %s\n", b)
}

// TestTwoProcessesFetchOnce: two processes needing the same missing
// columns at once fetch them once between them.
func TestTwoProcessesFetchOnce(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	writeArrowParquet(t, filepath.Join(src.dir, "t.parquet"), 20000, 4000, 12)
	cols := []string{"name", "price"}
	want := singleFetch(t, src, "t.parquet", cols)
	args, _ := json.Marshal(helperArgs{Cache: t.TempDir(), Source: src.dir, Key: "t.parquet", Columns: cols,
		Start: time.Now().Add(time.Second)})
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+string(args))
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	var fetched int64
	misses := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i])
		}
		_, line, ok := strings.Cut(outs[i].String(), "STATS ")
		if !ok {
			t.Fatalf("process %d printed no stats:\n%s", i, outs[i])
		}
		line, _, _ = strings.Cut(line, "\n")
		var st FetchStats
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			t.Fatal(err)
		}
		fetched += st.BytesFetched
		if !st.Hit {
			misses++
		}
	}
	if fetched != want || misses != 1 {
		t.Errorf("two processes fetched %d bytes in %d misses; one fetch is %d bytes", fetched, misses, want)
	}
}

// TestWaitHonorsContext: a scan waiting for another process's fetch gives
// up when its context ends, and leaves the entry usable.
func TestWaitHonorsContext(t *testing.T) {
	t.Parallel()
	src := &dirSource{dir: t.TempDir()}
	writeArrowParquet(t, filepath.Join(src.dir, "t.parquet"), 1000, 500, 14)
	c := openCache(t, 0)
	_, etag, err := src.Stat(context.Background(), "t.parquet")
	if err != nil {
		t.Fatal(err)
	}
	held, err := lock(context.Background(), c.path(entryID("t.parquet", etag), extFill), unix.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := c.Materialize(ctx, src, "t.parquet", []string{"id"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting on a held fill lock: %v, want the context's deadline", err)
	}
	held.Close()
	local, _, err := c.Materialize(context.Background(), src, "t.parquet", []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	c.Release(local)
}
