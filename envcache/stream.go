package envcache

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Streamed installs: a cold environment waits on its biggest wheel
// (pyarrow, 55 MB), first for the download, then for the unpacking. A
// wheel is a zip whose members follow one another, each behind a local
// header that gives its name, method, CRC-32 and sizes, so the members
// can be unpacked while the rest arrives: downloading and unpacking
// overlap. Nothing of it is trusted before the end: the whole file's
// SHA-256 must be the index's, and the members unpacked must be exactly
// those of the central directory (name, CRC-32, size); otherwise the
// folder is unpacked again from the central directory, as unpackZip
// does, or the install fails. Executable bits, which only the central
// directory holds, are set at the end. A member whose sizes follow its
// data (a data descriptor), ZIP64, encryption or another compression
// method stops the streaming: the rest is unpacked once the file is
// complete.

// errNotStreamable says the response cannot be streamed into memory (no
// or too large Content-Length): the caller downloads it the usual way.
var errNotStreamable = errors.New("not streamable")

// arrival is a download into a buffer of the announced size; readers wait
// for the bytes they need.
type arrival struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte // len = bytes arrived; the array never moves
	done bool
	err  error
}

// wait returns the bytes arrived once there are at least n (or the
// download ended).
func (a *arrival) wait(n int) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.buf) < n && !a.done {
		a.cond.Wait()
	}
	if len(a.buf) >= n {
		return a.buf, nil
	}
	if a.err != nil {
		return nil, a.err
	}
	return nil, io.ErrUnexpectedEOF
}

// finish waits for the end of the download and returns the file.
func (a *arrival) finish() ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for !a.done {
		a.cond.Wait()
	}
	return a.buf, a.err
}

// streamWheel downloads the wheel d and unpacks it into root as it
// arrives. It returns the file's bytes (verified against d.SHA256) and
// how long the download took, or errNotStreamable before reading
// anything.
func (c *Cache) streamWheel(ctx context.Context, d Distribution, root string) ([]byte, time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, errdefs.New(errdefs.ErrUnavailable, "download %s: %v", d.Filename(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, errdefs.New(errdefs.ErrUnavailable, "download %s: GET %s: %s", d.Filename(), d.URL, resp.Status)
	}
	n := resp.ContentLength
	if n < 0 || n > maxInMemory {
		return nil, 0, errNotStreamable
	}
	add, end := c.downloads.begin(n)
	defer end()
	a := &arrival{buf: make([]byte, 0, n)}
	a.cond = sync.NewCond(&a.mu)
	h := sha256.New()
	var took time.Duration
	go func() {
		var err error
		for {
			a.mu.Lock()
			free := a.buf[len(a.buf):cap(a.buf)]
			a.mu.Unlock()
			if len(free) == 0 {
				// Announced size reached: anything more is an error.
				var one [1]byte
				if k, _ := resp.Body.Read(one[:]); k > 0 {
					err = fmt.Errorf("download %s: more than the announced %d bytes", d.Filename(), n)
				}
				break
			}
			k, rerr := resp.Body.Read(free[:min(len(free), 256<<10)])
			h.Write(free[:k])
			add(k)
			a.mu.Lock()
			a.buf = a.buf[:len(a.buf)+k]
			a.mu.Unlock()
			a.cond.Broadcast()
			if rerr == io.EOF {
				if len(a.buf) < int(n) {
					err = fmt.Errorf("download %s: %w", d.Filename(), io.ErrUnexpectedEOF)
				}
				break
			}
			if rerr != nil {
				err = errdefs.New(errdefs.ErrUnavailable, "download %s: %v", d.Filename(), rerr)
				break
			}
		}
		a.mu.Lock()
		a.done, a.err = true, err
		took = time.Since(start)
		a.mu.Unlock()
		a.cond.Broadcast()
	}()

	got, streamErr := unpackArriving(a, d.Filename(), root)
	data, err := a.finish()
	if err != nil {
		return nil, 0, err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); d.SHA256 != "" && sum != d.SHA256 {
		return nil, 0, errdefs.New(errdefs.ErrInvalidArgument, "%s: sha256 %s does not match the index's %s", d.Filename(), sum, d.SHA256)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), n)
	if err != nil {
		return nil, 0, fmt.Errorf("open wheel %s: %w", d.Filename(), err)
	}
	if streamErr == nil {
		streamErr = matchCentral(zr, got, root)
	}
	if streamErr != nil {
		// Unpack it again, from the central directory.
		c.log.Debug("unpacking after the download", "wheel", d.Filename(), "reason", streamErr)
		if err := removeAll(root); err != nil {
			return nil, 0, err
		}
		if err := unpackZip(zr, d.Filename(), root); err != nil {
			return nil, 0, err
		}
	}
	return data, took, nil
}

// streamed is a member unpacked from its local header.
type streamed struct {
	crc  uint32
	size uint64
}

// unpackArriving unpacks the members of the zip arriving in a into root,
// in order, by local header, and returns them by target path. It stops
// with an error at the first member it cannot take this way.
func unpackArriving(a *arrival, name, root string) (map[string]streamed, error) {
	type job struct {
		dst    string
		method uint16
		crc    uint32
		size   uint64
		data   []byte
	}
	jobs := make(chan job, 64)
	var (
		wg      sync.WaitGroup
		failed  atomic.Bool
		errOnce sync.Once
		werr    error
	)
	fail := func(err error) {
		errOnce.Do(func() { werr = err })
		failed.Store(true)
	}
	for w := 0; w < unpackWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for j := range jobs {
				if failed.Load() {
					continue
				}
				if err := writeMember(j.dst, j.method, j.crc, j.size, j.data, buf); err != nil {
					fail(fmt.Errorf("%s: %w", j.dst, err))
				}
			}
		}()
	}
	got := map[string]streamed{}
	dirs := map[string]bool{root: true}
	if err := os.MkdirAll(root, 0o755); err != nil {
		close(jobs)
		wg.Wait()
		return nil, err
	}
	err := func() error {
		off := 0
		for !failed.Load() {
			b, err := a.wait(off + 4)
			if err != nil {
				return err
			}
			switch binary.LittleEndian.Uint32(b[off:]) {
			case 0x04034b50: // local file header
			case 0x02014b50, 0x06054b50: // central directory: all members seen
				return nil
			default:
				return fmt.Errorf("no local header at offset %d", off)
			}
			if b, err = a.wait(off + 30); err != nil {
				return err
			}
			hdr := b[off : off+30]
			flags := binary.LittleEndian.Uint16(hdr[6:])
			method := binary.LittleEndian.Uint16(hdr[8:])
			crc := binary.LittleEndian.Uint32(hdr[14:])
			csize := binary.LittleEndian.Uint32(hdr[18:])
			usize := binary.LittleEndian.Uint32(hdr[22:])
			nlen := int(binary.LittleEndian.Uint16(hdr[26:]))
			xlen := int(binary.LittleEndian.Uint16(hdr[28:]))
			if flags&0x9 != 0 || csize == 0xffffffff || usize == 0xffffffff || method != zip.Store && method != zip.Deflate {
				return fmt.Errorf("member at offset %d: flags %#x, method %d", off, flags, method)
			}
			dataAt := off + 30 + nlen + xlen
			end := dataAt + int(csize)
			if b, err = a.wait(end); err != nil {
				return err
			}
			member := string(b[off+30 : off+30+nlen])
			off = end
			if strings.HasSuffix(member, "/") {
				continue
			}
			if strings.Contains(member, "\\") || strings.HasPrefix(member, "/") {
				return fmt.Errorf("bad entry %q", member)
			}
			target, ok := wheelTarget(member)
			if !ok {
				continue
			}
			clean := filepath.Clean(target)
			if clean == "." || strings.HasPrefix(clean, "..") {
				return fmt.Errorf("entry %q escapes the install folder", member)
			}
			if _, dup := got[clean]; dup {
				return fmt.Errorf("entry %q repeated", member)
			}
			dst := filepath.Join(root, clean)
			if dir := filepath.Dir(dst); !dirs[dir] {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				dirs[dir] = true
			}
			got[filepath.ToSlash(clean)] = streamed{crc, uint64(usize)}
			jobs <- job{dst, method, crc, uint64(usize), b[dataAt:end]}
		}
		return nil
	}()
	close(jobs)
	wg.Wait()
	if err == nil {
		err = werr
	}
	if err != nil {
		return nil, fmt.Errorf("wheel %s: %w", name, err)
	}
	return got, nil
}

// writeMember decompresses one member into dst and checks its size and
// CRC-32.
func writeMember(dst string, method uint16, crc uint32, size uint64, data, buf []byte) error {
	var r io.Reader = bytes.NewReader(data)
	if method == zip.Deflate {
		fr := newFlateReader(r)
		defer fr.Close()
		r = fr
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := crc32.NewIEEE()
	k, err := io.CopyBuffer(struct{ io.Writer }{io.MultiWriter(out, h)}, io.LimitReader(r, int64(size)+1), buf)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if uint64(k) != size || h.Sum32() != crc {
		return fmt.Errorf("size or CRC-32 differs from its header")
	}
	return nil
}

// matchCentral checks that the members unpacked are those of the central
// directory, and gives executable members their bits.
func matchCentral(zr *zip.Reader, got map[string]streamed, root string) error {
	seen := 0
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		target, ok := wheelTarget(f.Name)
		if !ok {
			continue
		}
		rel := filepath.ToSlash(filepath.Clean(target))
		s, ok := got[rel]
		if !ok || s.crc != f.CRC32 || s.size != f.UncompressedSize64 {
			return fmt.Errorf("member %s differs from the central directory", f.Name)
		}
		seen++
		if f.Mode()&0o111 != 0 {
			if err := os.Chmod(filepath.Join(root, filepath.FromSlash(rel)), 0o755); err != nil {
				return err
			}
		}
	}
	if seen != len(got) {
		return fmt.Errorf("%d members unpacked, %d in the central directory", len(got), seen)
	}
	return nil
}
