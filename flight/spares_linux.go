//go:build linux

package flight

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lease takes and drops a write lease on fd (opened read-only): true if
// no other open file description of the file exists.
func lease(fd int) bool {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		return false
	}
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
	return err == nil
}

// preallocate gives f its pages up to size before it is written
// (fallocate(2)): on tmpfs, in one call rather than a page at a time as
// the writes come, and a file that cannot fit fails before anything is
// sent. A file system without it is left to its writes.
func preallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	return err
}

// allocate gives f its pages up to size (fallocate(2)), for a reserve of
// spares; a file system without it is an error.
func allocate(f *os.File, size int64) error {
	return unix.Fallocate(int(f.Fd()), 0, 0, size)
}
