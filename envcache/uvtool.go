package envcache

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// The cache's own uv. A machine without uv (Config.UV, $LAKEHOUSE_UV, uv on
// PATH) would resolve with pip, 2-3x slower than uv on a cold add; instead
// the cache installs uv itself on first need. uv's wheel on PyPI carries
// its static binary as uv-<version>.data/scripts/uv: the wheel for this
// machine's platform is looked up on the configured index's simple API,
// downloaded (into memory, through the download cache when there is one),
// checked against the index's SHA-256, and only the binary is extracted:
//
//	<cache>/tools/
//	├── uv-<UVVersion>/uv    read-only (0555, folder 0555)
//	├── uv-<UVVersion>.json  written last: the tool is installed iff this
//	│                        exists; holds the wheel's URL and hash and
//	│                        the folder's stamp (integrity.go)
//	└── uv-<UVVersion>.lock  flock held while installing it
//
// The version is pinned (UVVersion): every machine resolves with the same
// uv, and a new lakehouse release moves the pin. A folder whose stamp
// differs is installed again.

// UVVersion is the uv the cache installs for itself.
const UVVersion = "0.13.9"

// uvBootstrapTimeout bounds finding, downloading and unpacking uv.
const uvBootstrapTimeout = 2 * time.Minute

// uvRetryAfter is how long a Cache that could not install uv resolves
// with pip before it tries again.
const uvRetryAfter = 10 * time.Minute

// uvTool is tools/uv-<version>.json.
type uvTool struct {
	Version   string    `json:"version"`
	Wheel     string    `json:"wheel"`
	URL       string    `json:"url"`
	SHA256    string    `json:"sha256"`
	Stamp     string    `json:"stamp"`
	Installed time.Time `json:"installed"`
}

func (c *Cache) toolsDir() string { return filepath.Join(c.cfg.Dir, "tools") }

// UVPath is where the cache's own uv is (or will be) installed.
func (c *Cache) UVPath() string {
	return filepath.Join(c.toolsDir(), "uv-"+UVVersion, "uv")
}

// resolver returns the resolver to run and, for uv, its binary: Config.UV
// when set, else the cache's own uv (installed now if needed). In auto
// mode (Config.Resolver "") a uv that cannot be had (offline, an index
// without uv, a platform uv has no wheel for) means pip, with a note in
// the debug log; with Resolver "uv" it is an error.
func (c *Cache) resolver(ctx context.Context) (string, string, error) {
	switch {
	case c.cfg.Resolver == "pip":
		return "pip", "", nil
	case c.cfg.UV != "":
		return "uv", c.cfg.UV, nil
	}
	c.uvMu.Lock()
	defer c.uvMu.Unlock()
	if c.uvErr != nil && time.Since(c.uvErrAt) > uvRetryAfter {
		c.uvErr, c.uvNoted = nil, false // a long-lived process tries again
	}
	if c.uvPath == "" && c.uvErr == nil {
		c.uvPath, c.uvErr = c.ensureUV(ctx)
		c.uvErrAt = time.Now()
		if c.uvErr != nil && ctx.Err() != nil {
			// Cancelled, not failed: the next call tries again.
			err := c.uvErr
			c.uvErr = nil
			return "", "", err
		}
	}
	if c.uvErr == nil {
		return "uv", c.uvPath, nil
	}
	if c.cfg.Resolver == "uv" {
		return "", "", errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"install uv (pip install uv) and put it on PATH or in LAKEHOUSE_UV, or use the pip resolver",
			"uv is not installed and the package cache could not install it: %v", c.uvErr)
	}
	if !c.uvNoted {
		c.uvNoted = true
		c.log.Info("resolving with pip: no uv on this machine and the package cache could not install it", "err", c.uvErr)
	}
	return "pip", "", nil
}

// ensureUV returns the cache's own uv, installing it first if needed.
// Concurrent callers, in this process or others, install it once: a flock
// on tools/uv-<version>.lock, the folder built under a temporary name and
// renamed into place, the metadata written last.
func (c *Cache) ensureUV(ctx context.Context) (string, error) {
	bin := c.UVPath()
	dir := filepath.Dir(bin)
	meta := dir + ".json"
	if c.uvIntact(meta, dir) {
		return bin, nil
	}
	ctx, cancel := context.WithTimeout(ctx, uvBootstrapTimeout)
	defer cancel()
	if err := os.MkdirAll(c.toolsDir(), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := flockContext(ctx, lock); err != nil {
		return "", err
	}
	if c.uvIntact(meta, dir) {
		return bin, nil // another process installed it while we waited
	}
	if _, err := os.Stat(meta); err == nil {
		c.log.Warn("the package cache's uv changed since it was installed; installing it again", "dir", dir)
	}
	os.Remove(meta)
	start := time.Now()
	d, err := c.findUV(ctx)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(c.tmpDir(), "uv-"+UVVersion+"-*")
	if err != nil {
		return "", err
	}
	defer removeAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := c.fetchUV(ctx, d, tmp, root); err != nil {
		return "", err
	}
	// It runs here: a wheel for another libc or CPU fails now, not in
	// every resolution.
	out, err := exec.CommandContext(ctx, filepath.Join(root, "uv"), "--version").Output()
	if err != nil || !strings.Contains(string(out), UVVersion) {
		return "", fmt.Errorf("uv from %s does not run on this machine: %v %s", d.Filename(), err, bytes.TrimSpace(out))
	}
	if _, err := makeReadOnly(root); err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); err == nil {
		removeAll(dir) // left by a crashed installer or changed since
	}
	if err := os.Rename(root, dir); err != nil {
		return "", err
	}
	_, stamp, err := walkStamp(dir)
	if err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(uvTool{Version: UVVersion, Wheel: d.Filename(), URL: d.URL, SHA256: d.SHA256,
		Stamp: stamp, Installed: time.Now().UTC()}, "", "  ")
	if err := writeFileAtomic(meta, b); err != nil {
		return "", err
	}
	c.log.Debug("installed uv", "version", UVVersion, "wheel", d.Filename(), "took", time.Since(start))
	return bin, nil
}

// fetchUV puts the binary of uv's wheel d in root/uv: unpacked while the
// wheel downloads (stream.go), else from the downloaded file.
func (c *Cache) fetchUV(ctx context.Context, d Distribution, tmp, root string) error {
	if c.streamable(d) {
		wheel := filepath.Join(tmp, "wheel")
		data, _, err := c.streamWheel(ctx, d, wheel)
		if err == nil {
			c.keepDownload(d, data)
			if err := os.MkdirAll(root, 0o755); err != nil {
				return err
			}
			if err := os.Rename(filepath.Join(wheel, "bin", "uv"), filepath.Join(root, "uv")); err != nil {
				return fmt.Errorf("wheel %s has no uv-%s.data/scripts/uv: %w", d.Filename(), UVVersion, err)
			}
			// Executable whatever the zip's attributes say, as extractUV.
			return os.Chmod(filepath.Join(root, "uv"), 0o755)
		}
		if !errors.Is(err, errNotStreamable) {
			return err
		}
	}
	file, data, err := c.fetch(ctx, d, tmp)
	if err != nil {
		return err
	}
	return extractUV(file, data, d.Filename(), root)
}

// uvIntact says whether the tool described by meta is installed in dir
// and unchanged since.
func (c *Cache) uvIntact(meta, dir string) bool {
	b, err := os.ReadFile(meta)
	if err != nil {
		return false
	}
	var t uvTool
	if json.Unmarshal(b, &t) != nil || t.Version != UVVersion || t.Stamp == "" {
		return false
	}
	_, stamp, err := walkStamp(dir)
	return err == nil && stamp == t.Stamp
}

// findUV returns uv's wheel for this machine: from the index's simple API
// (with the index's SHA-256, required), or with --no-index from a
// --find-links folder.
func (c *Cache) findUV(ctx context.Context) (Distribution, error) {
	plats := uvPlatforms()
	if len(plats) == 0 {
		return Distribution{}, errdefs.New(errdefs.ErrFailedPrecondition, "uv publishes no wheel for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	prefix := "uv-" + UVVersion + "-"
	idx := c.cfg.Index
	if idx.NoIndex {
		for _, fl := range idx.FindLinks {
			if strings.Contains(fl, "://") {
				continue
			}
			names, _ := filepath.Glob(filepath.Join(fl, prefix+"*.whl"))
			var files []indexFile
			for _, n := range names {
				files = append(files, indexFile{Filename: filepath.Base(n), URL: "file://" + n})
			}
			if d, ok := pickUVWheel(files, plats); ok {
				return d, nil
			}
		}
		return Distribution{}, errdefs.New(errdefs.ErrNotFound, "no %s*.whl for %s in the --find-links folders", prefix, strings.Join(plats, " or "))
	}
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	files, err := simpleFiles(lctx, idx.IndexURL, "uv")
	if err != nil {
		return Distribution{}, fmt.Errorf("find uv %s on %s: %w", UVVersion, idx.IndexURL, err)
	}
	var hashed []indexFile
	for _, f := range files {
		if f.Hashes["sha256"] != "" && !f.yanked() {
			hashed = append(hashed, f)
		}
	}
	d, ok := pickUVWheel(hashed, plats)
	if !ok {
		return Distribution{}, errdefs.New(errdefs.ErrNotFound, "%s has no %s*.whl with a sha256 for %s",
			idx.IndexURL, prefix, strings.Join(plats, " or "))
	}
	return d, nil
}

// pickUVWheel returns the UVVersion wheel whose platform tags include the
// earliest of plats.
func pickUVWheel(files []indexFile, plats []string) (Distribution, bool) {
	prefix := "uv-" + UVVersion + "-py3-none-"
	best, bestRank := Distribution{}, len(plats)
	for _, f := range files {
		tags, ok := strings.CutPrefix(f.Filename, prefix)
		if !ok || !strings.HasSuffix(tags, ".whl") {
			continue
		}
		for _, t := range strings.Split(strings.TrimSuffix(tags, ".whl"), ".") {
			for r, p := range plats {
				if t == p && r < bestRank {
					best = Distribution{Name: "uv", Version: UVVersion, URL: f.URL, SHA256: f.Hashes["sha256"]}
					bestRank = r
				}
			}
		}
	}
	return best, bestRank < len(plats)
}

// uvPlatforms are the wheel platform tags whose uv runs on this machine,
// best first: uv's Linux binaries are static or need glibc ≥ 2.17
// (manylinux_2_17), its musllinux ones run anywhere on their CPU.
func uvPlatforms() []string {
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	switch {
	case runtime.GOOS == "linux" && arch != "":
		if isMusl() {
			return []string{"musllinux_1_1_" + arch}
		}
		return []string{"manylinux_2_17_" + arch, "manylinux2014_" + arch, "musllinux_1_1_" + arch}
	case runtime.GOOS == "darwin" && arch == "x86_64":
		return []string{"macosx_10_12_x86_64"}
	case runtime.GOOS == "darwin" && arch == "aarch64":
		return []string{"macosx_11_0_arm64"}
	}
	return nil
}

// isMusl says whether the machine's C library is musl (Alpine): its
// dynamic loader is /lib/ld-musl-<arch>.so.1.
func isMusl() bool {
	ms, _ := filepath.Glob("/lib/ld-musl-*.so.1")
	return len(ms) > 0
}

// extractUV writes the uv binary of the wheel (file, or data in memory)
// to root/uv.
func extractUV(file string, data []byte, name, root string) error {
	var zr *zip.Reader
	if data != nil {
		r, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return fmt.Errorf("open wheel %s: %w", name, err)
		}
		zr = r
	} else {
		rc, err := zip.OpenReader(file)
		if err != nil {
			return fmt.Errorf("open wheel %s: %w", name, err)
		}
		defer rc.Close()
		zr = &rc.Reader
	}
	zr.RegisterDecompressor(zip.Deflate, newFlateReader)
	want := "uv-" + UVVersion + ".data/scripts/uv"
	for _, f := range zr.File {
		if f.Name != want {
			continue
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("wheel %s: %w", name, err)
		}
		defer rc.Close()
		out, err := os.OpenFile(filepath.Join(root, "uv"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
		if err != nil {
			return err
		}
		// The zip reader checks the member's CRC-32 at its end.
		if _, err := io.Copy(out, rc); err != nil {
			out.Close()
			return fmt.Errorf("wheel %s: %s: %w", name, want, err)
		}
		return out.Close()
	}
	return fmt.Errorf("wheel %s has no %s: %w", name, want, fs.ErrNotExist)
}
