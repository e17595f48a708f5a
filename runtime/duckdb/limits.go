package duckdb

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Environment variables that bound every DuckDB this process opens (queries,
// SQL models, input filters).
const (
	// EnvMemory caps DuckDB's memory_limit: bytes or a size ("4GB", "512MiB").
	EnvMemory = "LAKEHOUSE_DUCKDB_MEMORY"
	// EnvThreads is DuckDB's worker thread count (default: one per core).
	EnvThreads = "LAKEHOUSE_DUCKDB_THREADS"
)

// freeShare is the share of the machine's available memory a DuckDB may
// use at most, whatever is configured: the rest is left to the process,
// the functions running beside it and the page cache.
const freeShare = 0.8

// memAvailable is the machine's available memory in bytes (MemAvailable of
// /proc/meminfo), or 0 when unknown. A variable so tests can replace it.
var memAvailable = func() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			fs := strings.Fields(rest)
			if len(fs) == 2 && fs[1] == "kB" {
				if n, err := strconv.ParseInt(fs[0], 10, 64); err == nil {
					return n << 10
				}
			}
		}
	}
	return 0
}

// Limits are the memory limit (bytes) and thread count a DuckDB gets.
type Limits struct {
	MemoryBytes int64 // 0: DuckDB's default
	Threads     int   // 0: one per core
}

// limits decides a DB's limits: the requested memory (0: none), else
// LAKEHOUSE_DUCKDB_MEMORY, never above 80% of the machine's available
// memory; the requested threads, else LAKEHOUSE_DUCKDB_THREADS. Bad
// environment values are ErrInvalidArgument.
func limits(getenv func(string) string, memory int64, threads int) (Limits, error) {
	l := Limits{MemoryBytes: memory, Threads: threads}
	if v := strings.TrimSpace(getenv(EnvMemory)); v != "" && l.MemoryBytes == 0 {
		n, err := ParseSize(v)
		if err != nil {
			return l, errdefs.New(errdefs.ErrInvalidArgument, "%s=%q: %v", EnvMemory, v, err)
		}
		l.MemoryBytes = n
	}
	if free := memAvailable(); free > 0 {
		if c := int64(float64(free) * freeShare); l.MemoryBytes == 0 || l.MemoryBytes > c {
			l.MemoryBytes = c
		}
	}
	if v := strings.TrimSpace(getenv(EnvThreads)); v != "" && l.Threads == 0 {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 4096 {
			return l, errdefs.New(errdefs.ErrInvalidArgument, "%s=%q: use a thread count such as %d", EnvThreads, v, runtime.NumCPU())
		}
		l.Threads = n
	}
	return l, nil
}

// StreamThreads is the thread count for a query whose rows stream out
// as DuckDB produces them, with no aggregate, join, sort or other
// operator that works on all its input first (the caller decides, see
// runtime/query): a core less than the machine has, at least one. The
// reader of a streamed result copies each batch and writes it (to a
// Flight client, a file, a function's input), and the thread that fetches
// rows runs DuckDB's tasks itself: with a worker thread per core besides,
// the workers and the reader take turns on the cores, and the fetching
// thread spins while the result buffer is empty. On 2 cores, a 10M-row
// result streamed to a Flight client took ~25% less server CPU with 1
// thread than with 2, in no more time (bench/client_stream.py).
func StreamThreads() int { return max(runtime.NumCPU()-1, 1) }

// ParseSize reads a byte size: a number of bytes, or one with a unit as
// the planner's @resources(memory=) takes them: KB, MB, GB, TB in powers
// of 1000, KiB, MiB, GiB, TiB in powers of 1024 ("4GB", "512MiB").
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num := strings.TrimRight(s, "KMGTIBkmgtib ")
	unit := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	f, err := strconv.ParseFloat(num, 64)
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}
	m, ok := mult[unit]
	// Written so that NaN fails it too.
	if err != nil || !ok || !(f*m >= 1 && f*m <= 1<<60) {
		return 0, fmt.Errorf(`use bytes or a size such as "4GB" or "512MiB"`)
	}
	return int64(f * m), nil
}
