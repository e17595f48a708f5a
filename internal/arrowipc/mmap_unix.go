//go:build unix

package arrowipc

import (
	"fmt"
	"math"
	"os"
	"syscall"
)

// mapFile maps the first size bytes of a file read-only into memory.
func mapFile(path string, size int64) (data []byte, unmap func() error, err error) {
	if size <= 0 || size > math.MaxInt {
		return nil, nil, fmt.Errorf("cannot map %d bytes", size)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	data, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mapping into memory: %w", err)
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
