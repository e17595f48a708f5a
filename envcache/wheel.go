package envcache

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	kflate "github.com/klauspost/compress/flate"
)

// unpackWheel extracts a wheel into dir the way an installer lays it out in
// site-packages: everything at the root, the <name>.data/purelib and
// platlib trees merged into the root, <name>.data/scripts under bin/.
// Headers and data files are not installed.
func unpackWheel(wheel, dir string) error {
	zr, err := zip.OpenReader(wheel)
	if err != nil {
		return fmt.Errorf("open wheel %s: %w", filepath.Base(wheel), err)
	}
	defer zr.Close()
	return unpackZip(&zr.Reader, filepath.Base(wheel), dir)
}

// unpackWorkers is how many members of one wheel are extracted at once.
// On the test machine creating a file costs 0.2-0.9 ms of kernel time, so
// a wheel of a thousand files is CPU-bound: extraction spreads over the
// cores (the other installs running at the same time share them).
var unpackWorkers = max(2, runtime.NumCPU())

// unpackZip extracts the wheel zr (named name, for errors) into dir: every
// folder is created once up front, then the members are decompressed and
// written by unpackWorkers goroutines.
func unpackZip(zr *zip.Reader, name, dir string) error {
	zr.RegisterDecompressor(zip.Deflate, newFlateReader)
	type member struct {
		f   *zip.File
		dst string
	}
	byTarget := map[string]int{}
	var members []member
	dirs := map[string]bool{dir: true}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		if strings.Contains(f.Name, "\\") || strings.HasPrefix(f.Name, "/") {
			return fmt.Errorf("wheel %s: bad entry %q", name, f.Name)
		}
		target, ok := wheelTarget(f.Name)
		if !ok {
			continue
		}
		clean := filepath.Clean(target)
		if clean == "." || strings.HasPrefix(clean, "..") {
			return fmt.Errorf("wheel %s: entry %q escapes the install folder", name, f.Name)
		}
		dst := filepath.Join(dir, clean)
		if i, dup := byTarget[dst]; dup {
			members[i].f = f // a repeated entry: the last one wins, as when extracting in order
			continue
		}
		byTarget[dst] = len(members)
		members = append(members, member{f, dst})
		dirs[filepath.Dir(dst)] = true
	}
	// Parents before children.
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	for _, d := range sorted {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("wheel %s: %w", name, err)
		}
	}
	var (
		next     atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
		failed   atomic.Bool
	)
	for w := 0; w < min(unpackWorkers, len(members)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(members) {
					return
				}
				m := members[i]
				if err := extractFile(m.f, m.dst, buf); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("wheel %s: %s: %w", name, m.f.Name, err) })
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// newFlateReader decompresses zip members with klauspost/compress, about
// a fifth faster than compress/flate on wheels.
func newFlateReader(r io.Reader) io.ReadCloser { return kflate.NewReader(r) }

// wheelTarget maps a wheel entry to its path in the install folder.
func wheelTarget(name string) (string, bool) {
	first, rest, found := strings.Cut(name, "/")
	if !found || !strings.HasSuffix(first, ".data") {
		return name, true
	}
	scheme, file, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	switch scheme {
	case "purelib", "platlib":
		return file, true
	case "scripts":
		return filepath.Join("bin", file), true
	default: // headers, data
		return "", false
	}
}

func extractFile(f *zip.File, dst string, buf []byte) error {
	mode := os.FileMode(0o644)
	if f.Mode()&0o111 != 0 {
		mode = 0o755
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	// Not io.CopyBuffer: *os.File's ReadFrom would take over and allocate.
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, rc, buf); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
