//go:build !unix

package arrowipc

import (
	"fmt"
	"io"
	"os"
)

// mapFile reads the first size bytes of a file into memory (there is no
// mmap here).
func mapFile(path string, size int64) (data []byte, unmap func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data = make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, fmt.Errorf("reading: %w", err)
	}
	return data, func() error { return nil }, nil
}
