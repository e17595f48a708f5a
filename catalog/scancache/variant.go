package scancache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/parquet/metadata"
	"golang.org/x/sys/unix"
)

// extVariants is the directory of an entry's pruned-scan files.
const extVariants = ".rg"

// prunedFile is what the file of a scan that pruned row groups holds: the
// spans it needs of the entry's data file, at the same offsets, and after
// the object's end a footer that lists only the kept row groups. A reader
// of that file cannot reach a pruned row group: its footer does not name
// it.
type prunedFile struct {
	md   *metadata.FileMetaData
	keep []bool
	need []span // normalized
	size int64  // the object's
}

// variant writes the pruned file of a scan of entry id (pinned by the
// caller) and returns its path. The file is locked shared until Release,
// so that another process's sweep leaves it alone.
func (c *Cache) variant(id string, p *prunedFile) (string, error) {
	dir := c.path(id, extVariants)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("scan cache: %w", err)
	}
	c.sweepVariants(dir)
	var rgs []int
	for i, k := range p.keep {
		if k {
			rgs = append(rgs, i)
		}
	}
	sub, err := p.md.Subset(rgs)
	if err != nil {
		return "", fmt.Errorf("scan cache: pruning row groups: %w", err)
	}
	footer, err := sub.Serialize(context.Background())
	if err != nil {
		return "", fmt.Errorf("scan cache: pruning row groups: %w", err)
	}
	footer = binary.LittleEndian.AppendUint32(footer, uint32(len(footer)))
	footer = append(footer, magic...)

	var rnd [8]byte
	rand.Read(rnd[:])
	path := filepath.Join(dir, hex.EncodeToString(rnd[:])+extData)
	dst, err := tryLock(path, unix.LOCK_SH) // creates it
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			os.Remove(path)
			dst.Close()
		}
	}()
	src, err := os.Open(c.path(id, extData))
	if err != nil {
		return "", fmt.Errorf("scan cache: %w", err)
	}
	defer src.Close()
	buf := make([]byte, 1<<20)
	for _, s := range p.need {
		if _, err := io.CopyBuffer(io.NewOffsetWriter(dst, s.Off), io.NewSectionReader(src, s.Off, s.Len), buf); err != nil {
			return "", fmt.Errorf("scan cache: %w", err)
		}
	}
	if _, err := dst.WriteAt(footer, p.size); err != nil {
		return "", fmt.Errorf("scan cache: %w", err)
	}
	c.mu.Lock()
	c.variants[path] = dst
	c.mu.Unlock()
	ok = true
	return path, nil
}

// releaseVariant removes the pruned file at path if this Cache made it,
// and returns its entry's id.
func (c *Cache) releaseVariant(path string) (id string, ok bool) {
	c.mu.Lock()
	f := c.variants[path]
	delete(c.variants, path)
	c.mu.Unlock()
	if f == nil {
		return "", false
	}
	os.Remove(path)
	f.Close()
	return strings.TrimSuffix(filepath.Base(filepath.Dir(path)), extVariants), true
}

// sweepVariants removes the pruned files in dir that no process uses (left
// by one that stopped without releasing them).
func (c *Cache) sweepVariants(dir string) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		path := filepath.Join(dir, de.Name())
		c.mu.Lock()
		mine := c.variants[path] != nil
		c.mu.Unlock()
		if mine {
			continue
		}
		lk, err := tryLock(path, unix.LOCK_EX)
		if errors.Is(err, errBusy) || err != nil {
			continue
		}
		os.Remove(path)
		lk.Close()
	}
}

// variantsDisk is the disk space of an entry's pruned files.
func (c *Cache) variantsDisk(id string) int64 {
	des, err := os.ReadDir(c.path(id, extVariants))
	if err != nil {
		return 0
	}
	var n int64
	for _, de := range des {
		if fi, err := de.Info(); err == nil {
			n += diskUsage(fi)
		}
	}
	return n
}
