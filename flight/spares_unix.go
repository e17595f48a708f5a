//go:build unix

package flight

import (
	"io/fs"
	"os"
	"syscall"
)

// soleLinkOfOwn reports whether the file of st has one name and belongs to
// this process's user.
func soleLinkOfOwn(st fs.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Nlink == 1 && int(sys.Uid) == os.Getuid()
}

// sameDevice reports whether the folders a and b are on one file system
// (a file renames from one to the other).
func sameDevice(a, b string) bool {
	var sa, sb syscall.Stat_t
	return syscall.Stat(a, &sa) == nil && syscall.Stat(b, &sb) == nil && sa.Dev == sb.Dev
}
