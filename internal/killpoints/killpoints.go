// Package killpoints shares a crash test's kill points between workers
// that run in parallel, each on a store of its own (the crash tests of
// catalog and cli).
package killpoints

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// EnvCount is a count of points or workers: $env as a positive number,
// else def. A bad value fails t.
func EnvCount(t *testing.T, env string, def int) int {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", env, v)
	}
	return n
}

// Run calls fn for all points in t itself when workers is 1, else in
// that many parallel subtests, worker0, worker1…, each with its share.
func Run(t *testing.T, points, workers int, fn func(t *testing.T, points int)) {
	t.Helper()
	if workers <= 1 {
		fn(t, points)
		return
	}
	for w := range workers {
		n := points / workers
		if w < points%workers {
			n++
		}
		t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
			t.Parallel()
			fn(t, n)
		})
	}
}
