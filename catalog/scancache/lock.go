package scancache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errBusy is a non-blocking lock that another holder has.
var errBusy = errors.New("entry in use")

// lock opens (creating it) the lock file at path and takes a flock of kind
// how (unix.LOCK_SH or unix.LOCK_EX), waiting until ctx is done. It checks
// that the file it locked is still the one at path: an evictor removes an
// entry's lock file while it holds it, and whoever waited on the removed
// file tries again with a new one.
func lock(ctx context.Context, path string, how int) (*os.File, error) {
	for {
		f, err := tryLock(path, how)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, errBusy) {
			return nil, err
		}
		if err := waitLock(ctx, path, how); err != nil {
			return nil, err
		}
	}
}

// waitLock polls for the lock at path with a growing pause.
func waitLock(ctx context.Context, path string, how int) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("scan cache: lock %s: %w", path, err)
	}
	defer f.Close()
	pause := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			unix.Flock(int(f.Fd()), unix.LOCK_UN)
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("scan cache: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// tryLock is lock without waiting: errBusy if another holder conflicts.
func tryLock(path string, how int) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("scan cache: lock %s: %w", path, err)
		}
		err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if errors.Is(err, unix.EINTR) {
			f.Close()
			continue
		}
		if errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, errBusy
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("scan cache: lock %s: %w", path, err)
		}
		if same(f, path) {
			return f, nil
		}
		f.Close() // removed by an evictor after we opened it
	}
}

// same reports whether f is the file now at path.
func same(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	if err != nil {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
