package envcache

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// A package folder is trusted in two ways (verify.go does the full check):
//
//   - Its stamp (Package.Stamp, in pkgs/<hash>.json): a SHA-256 over every
//     entry's path, type, permissions, size, inode, modification and change
//     time, taken when the folder became read-only. Any write, chmod,
//     append, added or removed file changes a change time (which a process
//     cannot set back) or a folder's modification time, so assembling an
//     environment recomputes it (a stat per file, no reads: a few ms for
//     pandas) and refuses a folder whose stamp differs.
//   - Its content: every file is covered by a SHA-256, either the wheel's
//     own RECORD entry or, for what RECORD has no hash for (RECORD itself,
//     the bytecode compiled after install), our manifest pkgs/<hash>.files
//     written when the folder was made read-only. Bytecode is always in
//     the manifest, which comes first: compileall rewrites a stale pyc a
//     wheel ships (numpy 1.26.4 ships
//     numpy/distutils/__pycache__/conv_template.cpython-310.pyc), so its
//     RECORD hash no longer holds once the folder is compiled.

// manifestFile is the manifest of a package's files that its RECORD does
// not hash.
func (c *Cache) manifestFile(hash string) string { return filepath.Join(c.pkgsDir(), hash+".files") }

// fileSum is an expected file: its size (-1 when unknown) and digest.
type fileSum struct {
	algo   string // sha256, sha384 or sha512
	digest []byte
	size   int64
}

// treeEntry is one entry of a package folder as stat saw it.
type treeEntry struct {
	rel  string // slash-separated, "." for the folder itself
	mode uint32 // st_mode: type and permissions
	size int64
	uid  uint32
}

func (e treeEntry) isDir() bool     { return e.mode&unix.S_IFMT == unix.S_IFDIR }
func (e treeEntry) isRegular() bool { return e.mode&unix.S_IFMT == unix.S_IFREG }

// walkStamp stats every entry under dir (folders before their contents,
// names sorted) and returns them with the folder's stamp.
func walkStamp(dir string) ([]treeEntry, string, error) {
	var entries []treeEntry
	h := sha256.New()
	var buf []byte
	add := func(rel string, st *unix.Stat_t) {
		entries = append(entries, treeEntry{rel: rel, mode: st.Mode, size: st.Size, uid: st.Uid})
		buf = append(buf[:0], rel...)
		buf = append(buf, 0)
		for _, v := range []uint64{uint64(st.Mode), uint64(st.Size), st.Ino, uint64(st.Uid),
			uint64(st.Mtim.Nano()), uint64(st.Ctim.Nano())} {
			buf = binary.LittleEndian.AppendUint64(buf, v)
		}
		h.Write(buf)
	}
	var root unix.Stat_t
	if err := unix.Lstat(dir, &root); err != nil {
		return nil, "", &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	if root.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, "", fmt.Errorf("%s is not a folder", dir)
	}
	add(".", &root)
	var walk func(path, rel string) error
	walk = func(path, rel string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		names, err := f.Readdirnames(-1)
		if err != nil {
			return err
		}
		sort.Strings(names)
		fd := int(f.Fd())
		var sub []string
		for _, name := range names {
			var st unix.Stat_t
			if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &fs.PathError{Op: "stat", Path: filepath.Join(path, name), Err: err}
			}
			r := name
			if rel != "" {
				r = rel + "/" + name
			}
			add(r, &st)
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				sub = append(sub, name)
			}
		}
		for _, name := range sub {
			r := name
			if rel != "" {
				r = rel + "/" + name
			}
			if err := walk(filepath.Join(path, name), r); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(dir, ""); err != nil {
		return nil, "", err
	}
	return entries, "v1:" + hex.EncodeToString(h.Sum(nil)), nil
}

// checkStamp returns nil when p's folder still has the stamp it was given
// when it became read-only, else an error saying how to repair it.
func (c *Cache) checkStamp(p *Package) error {
	_, stamp, err := walkStamp(p.Dir)
	if err == nil && stamp == p.Stamp {
		return nil
	}
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		return tampered(p, "files are missing")
	}
	return tampered(p, "its files changed since it was installed")
}

func tampered(p *Package, what string) error { return &DamageError{Package: p, What: what} }

// DamageError is returned when an environment would use a package folder
// that changed since it was installed. Its class is errdefs.ErrInternal
// (exit 1): the cache, not the request, is wrong.
type DamageError struct {
	Package *Package
	What    string
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("package %s %s in %s is damaged: %s; check and repair the package cache with "+
		"`lakehouse env verify --fix` (it removes damaged packages; the next run installs them again)",
		e.Package.Name, e.Package.Version, e.Package.Dir, e.What)
}

func (e *DamageError) Unwrap() error { return errdefs.ErrInternal }

// usable checks the stamp of an installed package before an environment
// uses it. A folder being compiled or verified changes under its lock:
// when the lock is held the folder is taken as it is (its owner stamps it
// again); otherwise the metadata is read again under the lock, in case the
// stamp was renewed meanwhile, and a difference is an error.
func (c *Cache) usable(p *Package) (*Package, error) {
	if p.Stamp == "" {
		return nil, nil // installed by an older lakehouse: install again
	}
	if err := c.checkStamp(p); err == nil {
		return p, nil
	}
	lock, err := os.OpenFile(filepath.Join(c.pkgsDir(), p.Hash+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == unix.EWOULDBLOCK {
		return p, nil
	} else if err != nil {
		return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	cur := c.readPackage(p.Hash)
	if cur == nil {
		return nil, nil // removed meanwhile (gc, verify --fix): install again
	}
	if err := c.checkStamp(cur); err != nil {
		return nil, err
	}
	return cur, nil
}

// seal makes a filled package folder read-only, writes the manifest of
// the files its RECORD does not hash and returns the folder's size. The
// stamp is taken by stamp, once the folder is in its final place.
func (c *Cache) seal(hash, dir string) (int64, error) {
	size, err := makeReadOnly(dir)
	if err != nil {
		return 0, err
	}
	return size, c.writeManifest(hash, dir)
}

// writeManifest hashes the files of dir that no RECORD entry hashes, and
// the bytecode (compile may have rewritten a pyc the wheel shipped), and
// writes them to pkgs/<hash>.files.
func (c *Cache) writeManifest(hash, dir string) error {
	entries, _, err := walkStamp(dir)
	if err != nil {
		return err
	}
	record, err := readRecords(dir)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, e := range entries {
		if !e.isRegular() {
			continue
		}
		if s, ok := record[e.rel]; ok && s.digest != nil && !isBytecode(e.rel) {
			continue
		}
		sum, err := hashFile(filepath.Join(dir, filepath.FromSlash(e.rel)), "sha256", nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %s\n", hex.EncodeToString(sum), e.size, e.rel)
	}
	return writeFileAtomic(c.manifestFile(hash), b.Bytes())
}

// isBytecode reports whether rel (slash-separated) is a compiled module
// in a __pycache__ folder, which compileall writes.
func isBytecode(rel string) bool {
	return strings.HasSuffix(rel, ".pyc") && path.Base(path.Dir(rel)) == "__pycache__"
}

// readManifest reads pkgs/<hash>.files (nil, nil if there is none).
func (c *Cache) readManifest(hash string) (map[string]fileSum, error) {
	b, err := os.ReadFile(c.manifestFile(hash))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]fileSum{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s: bad line %q", c.manifestFile(hash), sc.Text())
		}
		d, err1 := hex.DecodeString(f[0])
		n, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: bad line %q", c.manifestFile(hash), sc.Text())
		}
		out[f[2]] = fileSum{algo: "sha256", digest: d, size: n}
	}
	return out, sc.Err()
}

// readRecords reads the RECORD of every .dist-info folder at dir's top
// level and returns the expected files by their path in the folder (the
// wheel's .data/purelib and platlib mapped to the top, scripts to bin/,
// headers and data left out as unpackZip leaves them out). An entry
// without a hash (RECORD itself) has a nil digest.
func readRecords(dir string) (map[string]fileSum, error) {
	ms, err := filepath.Glob(filepath.Join(dir, "*.dist-info", "RECORD"))
	if err != nil {
		return nil, err
	}
	out := map[string]fileSum{}
	for _, m := range ms {
		f, err := os.Open(m)
		if err != nil {
			return nil, err
		}
		err = parseRecord(f, out)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
	}
	return out, nil
}

// parseRecord adds the entries of a RECORD file (CSV: path, algo=digest in
// urlsafe base64 without padding, size) to out.
func parseRecord(r io.Reader, out map[string]fileSum) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if len(row) == 0 || row[0] == "" {
			continue
		}
		target, ok := wheelTarget(row[0])
		if !ok {
			continue
		}
		target = filepath.ToSlash(filepath.Clean(target))
		if target == "." || strings.HasPrefix(target, "../") || target == ".." || strings.HasPrefix(target, "/") {
			continue // not installed (installers' RECORDs may point outside)
		}
		s := fileSum{size: -1}
		if len(row) > 1 && row[1] != "" {
			algo, enc, ok := strings.Cut(row[1], "=")
			if !ok {
				return fmt.Errorf("entry %s: bad hash %q", row[0], row[1])
			}
			d, err := decodeRecordDigest(enc)
			if err != nil {
				return fmt.Errorf("entry %s: bad hash %q", row[0], row[1])
			}
			s.algo, s.digest = strings.ToLower(algo), d
		}
		if len(row) > 2 && row[2] != "" {
			n, err := strconv.ParseInt(row[2], 10, 64)
			if err != nil {
				return fmt.Errorf("entry %s: bad size %q", row[0], row[2])
			}
			s.size = n
		}
		out[target] = s // a repeated entry: the last one wins, as when unpacking
	}
}

// decodeRecordDigest decodes a RECORD digest: urlsafe base64 without
// padding (padding is tolerated).
func decodeRecordDigest(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
