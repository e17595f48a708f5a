package envcache

import (
	"os"

	"golang.org/x/sys/unix"
)

// spreadSubdirs marks dir with FS_TOPDIR_FL (chattr +T), best effort: ext4
// then places each folder made in it like a top-level folder, in a block
// group of its own with free inodes (Orlov), rather than next to its
// parent. On an ext4 without a journal an inode allocation re-checks, one
// by one, the inodes of its group deleted in the last 60-360 s (kernel
// recently_deleted()), so after a run of deletions (a test's temporary
// folders, a gc) creating a file in that group costs up to ~1 ms of
// kernel time; in a fresh group it costs ~15 µs. Measured on the test
// machine: 3500 files in 70 folders, 1.6-2.2 s without the flag, 0.05 s
// with it. Other file systems ignore or refuse the flag.
func spreadSubdirs(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopdirFL != 0 {
		return
	}
	unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsTopdirFL))
}

// fsTopdirFL is FS_TOPDIR_FL (linux/fs.h), which x/sys/unix does not define.
const fsTopdirFL = 0x00020000
