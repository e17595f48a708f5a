package envcache

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Package is one installed distribution: a read-only folder that goes on
// sys.path as it is.
type Package struct {
	// Hash names the folder: pkgs/<hash>/.
	Hash     string `json:"hash"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Filename string `json:"filename"`
	URL      string `json:"url"`
	SHA256   string `json:"sha256,omitempty"`
	// CacheTag is the interpreter the bytecode was compiled for.
	CacheTag string `json:"cache_tag"`
	// Compiled: the folder holds bytecode for CacheTag.
	Compiled  bool      `json:"compiled"`
	Size      int64     `json:"size"`
	Installed time.Time `json:"installed"`
	// Stamp summarizes the folder's file metadata when it was made
	// read-only (integrity.go); an environment refuses a folder whose
	// stamp differs. Empty for folders of older versions, which are
	// installed again.
	Stamp string `json:"stamp,omitempty"`
	// LastUsed is when an environment last included the package (the
	// modification time of pkgs/<hash>.json).
	LastUsed time.Time `json:"last_used"`
	// Dir is the folder (not stored).
	Dir string `json:"-"`
}

// packageHash is the content address of a distribution installed for an
// interpreter: the file's hash (its URL when the index gave none) and the
// bytecode tag.
func packageHash(d Distribution, cacheTag string) string {
	id := d.SHA256
	if id == "" {
		id = d.URL
	}
	h := sha256.Sum256([]byte(id + "|" + cacheTag))
	return hex.EncodeToString(h[:])[:32]
}

// install makes sure d is installed for in, exactly once per machine: a
// flock on pkgs/<hash>.lock serializes installers (other goroutines and
// other processes), the folder is built under a temporary name and renamed
// into place, and the metadata file pkgs/<hash>.json, written last, marks it
// complete.
func (c *Cache) install(ctx context.Context, in *Interpreter, d Distribution) (*Package, error) {
	hash := packageHash(d, in.CacheTag)
	meta := &Package{Hash: hash, Name: d.Name, Version: d.Version, Filename: d.Filename(), URL: d.URL,
		SHA256: d.SHA256, CacheTag: in.CacheTag}
	return c.installOnce(ctx, in, meta, func(tmp, root string) error {
		start := time.Now()
		if c.streamable(d) {
			data, took, err := c.streamWheel(ctx, d, root)
			if err == nil {
				c.log.Debug("fetched package", "name", d.Name, "version", d.Version, "bytes", len(data), "took", took, "streamed", true)
				c.keepDownload(d, data)
				return nil
			}
			if !errors.Is(err, errNotStreamable) {
				return err
			}
		}
		file, data, err := c.fetch(ctx, d, tmp)
		if err != nil {
			return err
		}
		c.log.Debug("fetched package", "name", d.Name, "version", d.Version, "bytes", len(data), "took", time.Since(start))
		if data != nil && d.IsWheel() {
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				return fmt.Errorf("open wheel %s: %w", d.Filename(), err)
			}
			return unpackZip(zr, d.Filename(), root)
		}
		if data != nil {
			file = filepath.Join(tmp, d.Filename())
			if err := os.WriteFile(file, data, 0o644); err != nil {
				return err
			}
		}
		wheel := file
		if !d.IsWheel() {
			if wheel, err = c.buildWheel(ctx, in, file, tmp); err != nil {
				return err
			}
		}
		return unpackWheel(wheel, root)
	})
}

// installOnce installs the package meta describes (meta.Hash names its
// folder) exactly once per machine: fill populates root (inside tmp, a
// scratch folder removed afterwards) under the package's flock; the folder
// is then made read-only, renamed into pkgs/ and its metadata written last.
func (c *Cache) installOnce(ctx context.Context, in *Interpreter, meta *Package, fill func(tmp, root string) error) (*Package, error) {
	hash := meta.Hash
	if p := c.readPackage(hash); p != nil {
		if p, err := c.usable(p); err != nil || p != nil {
			return p, err
		}
	}
	release, err := c.lockPackage(ctx, hash)
	if err != nil {
		return nil, err
	}
	defer release()
	if p := c.readPackage(hash); p != nil && p.Stamp != "" {
		// Another installer finished while we waited.
		if err := c.checkStamp(p); err != nil {
			return nil, err
		}
		return p, nil
	} else if p != nil {
		// Installed by an older lakehouse, without a stamp: installed
		// again, metadata first.
		os.Remove(filepath.Join(c.pkgsDir(), hash+".json"))
	}
	start := time.Now()
	dir := filepath.Join(c.pkgsDir(), hash)
	tmp, err := os.MkdirTemp(c.tmpDir(), hash+"-*")
	if err != nil {
		return nil, err
	}
	defer removeAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := fill(tmp, root); err != nil {
		return nil, err
	}
	filled := time.Now()
	if c.cfg.SyncCompile {
		c.compile(ctx, in, root)
	}
	size, err := c.seal(hash, root)
	if err != nil {
		return nil, err
	}
	sealed := time.Now()
	// A folder left by a crashed installer (no metadata file) goes first.
	if _, err := os.Stat(dir); err == nil {
		removeAll(dir)
	}
	if err := os.Rename(root, dir); err != nil {
		return nil, err
	}
	// The stamp is taken in place: the rename changed the folder's times.
	_, stamp, err := walkStamp(dir)
	if err != nil {
		return nil, err
	}
	p := *meta
	p.Compiled, p.Size, p.Installed, p.Dir, p.Stamp = c.cfg.SyncCompile, size, time.Now().UTC(), dir, stamp
	b, _ := json.MarshalIndent(&p, "", "  ")
	if err := writeFileAtomic(filepath.Join(c.pkgsDir(), hash+".json"), b); err != nil {
		return nil, err
	}
	c.installs.Add(1)
	c.log.Debug("installed package", "name", p.Name, "version", p.Version, "hash", hash, "took", time.Since(start),
		"fill", filled.Sub(start), "seal", sealed.Sub(filled))
	return &p, nil
}

// readPackage returns the installed package hash, or nil if it is not
// (completely) installed.
func (c *Cache) readPackage(hash string) *Package {
	meta := filepath.Join(c.pkgsDir(), hash+".json")
	b, err := os.ReadFile(meta)
	if err != nil {
		return nil
	}
	var p Package
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	if st, err := os.Stat(meta); err == nil {
		p.LastUsed = st.ModTime()
	}
	p.Dir = filepath.Join(c.pkgsDir(), hash)
	if st, err := os.Stat(p.Dir); err != nil || !st.IsDir() {
		return nil
	}
	return &p
}

// lockPackage takes the package's lock file (pkgs/<hash>.lock), which
// serializes installing, compiling, verifying and removing one package
// across processes. It gives up when ctx ends; release closes the file,
// which drops the lock.
func (c *Cache) lockPackage(ctx context.Context, hash string) (release func(), err error) {
	lock, err := os.OpenFile(filepath.Join(c.pkgsDir(), hash+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := flockContext(ctx, lock); err != nil {
		lock.Close()
		return nil, err
	}
	return func() { lock.Close() }, nil
}

// flockContext takes an exclusive flock on f, giving up when ctx ends.
func flockContext(ctx context.Context, f *os.File) error {
	for delay := time.Millisecond; ; delay = min(delay*2, 100*time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if err != unix.EWOULDBLOCK {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// fetch returns d's file: the file itself for file:// URLs, the download
// cache's copy when there is one, else a fresh download, in memory (data)
// when the server announces at most maxInMemory bytes, into dir otherwise;
// with a download cache the download is also kept there. The SHA-256 is
// checked when the index gave one.
func (c *Cache) fetch(ctx context.Context, d Distribution, dir string) (file string, data []byte, err error) {
	u, err := url.Parse(d.URL)
	if err != nil {
		return "", nil, fmt.Errorf("distribution %s: bad URL %q", d.Name, d.URL)
	}
	if u.Scheme == "file" {
		return u.Path, nil, verifySHA(u.Path, d)
	}
	cached := ""
	if c.cfg.DownloadDir != "" && d.SHA256 != "" {
		cached = c.downloadPath(d)
		if verifySHA(cached, d) == nil {
			return cached, nil, nil
		}
		if os.MkdirAll(filepath.Dir(cached), 0o755) != nil {
			cached = ""
		}
	}
	dst := filepath.Join(dir, d.Filename())
	if cached != "" {
		dst = cached + ".part"
	}
	data, sum, err := download(ctx, d.URL, dst, &c.downloads)
	if err != nil {
		return "", nil, fmt.Errorf("download %s: %w", d.Filename(), err)
	}
	if d.SHA256 != "" && sum != d.SHA256 {
		os.Remove(dst)
		return "", nil, errdefs.New(errdefs.ErrInvalidArgument, "%s: sha256 %s does not match the index's %s", d.Filename(), sum, d.SHA256)
	}
	if cached != "" {
		if data != nil {
			// Kept for the next install; the install itself does not wait
			// for the disk.
			if err := os.WriteFile(dst, data, 0o644); err == nil {
				os.Rename(dst, cached)
			}
			return "", data, nil
		}
		return cached, nil, os.Rename(dst, cached)
	}
	if data != nil {
		return "", data, nil
	}
	return dst, nil, nil
}

// streamable says whether d is a wheel to download and unpack at once
// (stream.go): from http(s), and not in the download cache.
func (c *Cache) streamable(d Distribution) bool {
	if !d.IsWheel() || !strings.HasPrefix(d.URL, "https://") && !strings.HasPrefix(d.URL, "http://") {
		return false
	}
	if c.cfg.DownloadDir == "" || d.SHA256 == "" {
		return true
	}
	_, err := os.Stat(c.downloadPath(d))
	return err != nil
}

// downloadPath is d's file in the download cache.
func (c *Cache) downloadPath(d Distribution) string {
	return filepath.Join(c.cfg.DownloadDir, d.SHA256[:2], d.SHA256+"-"+d.Filename())
}

// keepDownload stores a verified download in the download cache, if any.
func (c *Cache) keepDownload(d Distribution, data []byte) {
	if c.cfg.DownloadDir == "" || d.SHA256 == "" {
		return
	}
	dst := c.downloadPath(d)
	if os.MkdirAll(filepath.Dir(dst), 0o755) != nil {
		return
	}
	if err := os.WriteFile(dst+".part", data, 0o644); err == nil {
		os.Rename(dst+".part", dst)
	}
}

// maxInMemory is the largest download kept in memory rather than in a file.
const maxInMemory = 96 << 20

// download GETs rawURL, hashing as it reads: into memory when the response
// announces at most maxInMemory bytes, else into the file dst.
// Its bytes are counted in dl.
func download(ctx context.Context, rawURL, dst string, dl *downloads) (data []byte, sum string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", errdefs.New(errdefs.ErrUnavailable, "%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", errdefs.New(errdefs.ErrUnavailable, "GET %s: %s", rawURL, resp.Status)
	}
	add, end := dl.begin(resp.ContentLength)
	defer end()
	h := sha256.New()
	w := io.MultiWriter(h, countingWriter(add))
	if n := resp.ContentLength; n >= 0 && n <= maxInMemory {
		buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
		if _, err := io.Copy(io.MultiWriter(buf, w), resp.Body); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), hex.EncodeToString(h.Sum(nil)), nil
	}
	f, err := os.Create(dst)
	if err != nil {
		return nil, "", err
	}
	if _, err := io.Copy(io.MultiWriter(f, w), resp.Body); err != nil {
		f.Close()
		return nil, "", err
	}
	return nil, hex.EncodeToString(h.Sum(nil)), f.Close()
}

func verifySHA(file string, d Distribution) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if d.SHA256 == "" {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.SHA256 {
		return errdefs.New(errdefs.ErrInvalidArgument, "%s: sha256 %s does not match the index's %s", d.Filename(), got, d.SHA256)
	}
	return nil
}

// buildWheel turns an sdist into a wheel with the target interpreter's pip.
func (c *Cache) buildWheel(ctx context.Context, in *Interpreter, sdist, tmp string) (string, error) {
	out := filepath.Join(tmp, "wheel")
	args := []string{"-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "--no-input", "-q", "-w", out}
	args = append(args, c.cfg.Index.pipArgs()...)
	args = append(args, sdist)
	cmd := exec.CommandContext(ctx, in.Path, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", errdefs.New(errdefs.ErrInvalidArgument, "cannot build a wheel from %s: %s", filepath.Base(sdist), pipReason(buf.String()))
	}
	ms, _ := filepath.Glob(filepath.Join(out, "*.whl"))
	if len(ms) != 1 {
		return "", fmt.Errorf("pip wheel %s: expected one wheel, found %d", filepath.Base(sdist), len(ms))
	}
	return ms[0], nil
}

// compile writes bytecode for in next to the sources, so that imports from
// the read-only folder never compile. Hash-based pycs need no source stat.
// Failures (e.g. Python 2 files shipped as data) are not errors.
func (c *Cache) compile(ctx context.Context, in *Interpreter, dir string) {
	cmd := exec.CommandContext(ctx, in.Path, "-I", "-m", "compileall", "-q", "-j", "1",
		"--invalidation-mode", "unchecked-hash", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		c.log.Debug("compileall did not start", "err", err)
		return
	}
	if !c.cfg.SyncCompile {
		// Background work: functions starting meanwhile get the CPU first.
		unix.Setpriority(unix.PRIO_PROCESS, cmd.Process.Pid, 19)
	}
	if err := cmd.Wait(); err != nil {
		c.log.Debug("compileall reported errors", "dir", dir, "err", err, "output", out.String())
	}
}

// makeReadOnly makes every file under dir 0444 (0555 if executable) and
// every folder 0555, and returns the total size of its files.
func makeReadOnly(dir string) (int64, error) {
	var size int64
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if e.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		size += info.Size()
		if e.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		// Readable by every user whatever the umask (functions run as
		// another user), executable where the wheel said so.
		mode := os.FileMode(0o444)
		if info.Mode().Perm()&0o111 != 0 {
			mode = 0o555
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		return 0, err
	}
	// Folders last (deepest first), so the walk could still create pycs.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i], 0o555); err != nil {
			return 0, err
		}
	}
	return size, nil
}

// removeAll removes a tree that may have been made read-only.
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// touch records that p was used now (at most once a minute).
func touch(p *Package, metaPath string) {
	if time.Since(p.LastUsed) < time.Minute {
		return
	}
	now := time.Now()
	if os.Chtimes(metaPath, now, now) == nil {
		p.LastUsed = now
	}
}

var _ = strings.TrimSpace
