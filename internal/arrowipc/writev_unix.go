//go:build unix

package arrowipc

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// writev writes bufs to f with as few system calls as the kernel allows
// (writev of up to 1,024 pieces at a time) and returns the bytes written.
func writev(f *os.File, bufs [][]byte) (int64, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var total int64
	var werr error
	for len(bufs) > 0 {
		if len(bufs[0]) == 0 {
			bufs = bufs[1:]
			continue
		}
		batch := bufs[:min(len(bufs), 1024)]
		var n int
		err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Writev(int(fd), batch)
			return werr != unix.EAGAIN
		})
		if err == nil {
			err = werr
		}
		if err == nil && n == 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			return total, &os.PathError{Op: "writev", Path: f.Name(), Err: err}
		}
		total += int64(n)
		// Drop what was written; a piece written in part stays in part.
		for n > 0 {
			if n < len(bufs[0]) {
				bufs[0] = bufs[0][n:]
				break
			}
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
	}
	return total, nil
}
