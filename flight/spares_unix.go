//go:build unix

package flight

import (
	"os"

	"golang.org/x/sys/unix"
)

// unshared reports whether the file at path (in the spares' folder) is
// this process's user's, mode 0644, without extended attributes, has no
// other name, and no process holds it open or mapped: a write lease
// (F_SETLEASE) is granted only when no other open file description of the
// file exists, mappings included. Where leases are not to be had (not
// Linux, leases disabled) nothing is taken as unshared.
func unshared(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var st unix.Stat_t
	fd := int(f.Fd())
	if unix.Fstat(fd, &st) != nil || st.Nlink != 1 || int(st.Uid) != os.Getuid() ||
		st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o7777 != 0o644 {
		return false
	}
	if n, err := unix.Flistxattr(fd, nil); err != nil || n != 0 {
		return false
	}
	return lease(fd)
}

// sameDevice reports whether the folders a and b are on one file system
// (a file renames from one to the other).
func sameDevice(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Dev == sb.Dev
}
