package pipeline

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
)

// budget bounds the memory of models running at once: a model with a
// memory limit waits until the limits of those running leave room for it.
// A model larger than the whole budget runs alone.
type budget struct {
	mu    sync.Mutex
	cond  chan struct{}
	total int64
	used  int64
}

func newBudget(total int64) *budget { return &budget{total: total, cond: make(chan struct{})} }

func (b *budget) acquire(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.total {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		wait := b.cond
		b.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.cond)
	b.cond = make(chan struct{})
	b.mu.Unlock()
}

// availableMemory is MemAvailable from /proc/meminfo (4 GiB if unknown).
func availableMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 4 << 30
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return 4 << 30
}
