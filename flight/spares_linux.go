//go:build linux

package flight

import "golang.org/x/sys/unix"

// lease takes and drops a write lease on fd (opened read-only): true if
// no other open file description of the file exists.
func lease(fd int) bool {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		return false
	}
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
	return err == nil
}
