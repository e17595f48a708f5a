package envcache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// resolveUV locks reqs with `uv pip compile --format pylock.toml` for the
// target interpreter and picks, for each package, the wheel whose tags the
// interpreter ranks best (the sdist when there is no wheel).
func (c *Cache) resolveUV(ctx context.Context, uv string, in *Interpreter, reqs []string, idx IndexOptions) ([]Distribution, error) {
	// The tags are learnt while uv runs.
	type tagsResult struct {
		m   map[string]int
		err error
	}
	tagsc := make(chan tagsResult, 1)
	go func() {
		m, err := c.interp.tags(ctx, in)
		tagsc <- tagsResult{m, err}
	}()
	args := []string{"pip", "compile", "-", "--python", in.Path, "--format", "pylock.toml", "--no-header",
		"--quiet", "--color", "never"}
	args = append(args, idx.pipArgs()...)
	cmd := exec.CommandContext(ctx, uv, args...)
	cmd.Stdin = strings.NewReader(strings.Join(reqs, "\n") + "\n")
	cmd.Env = append(os.Environ(), "UV_NO_PROGRESS=1", "NO_COLOR=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "cannot resolve %s for Python %s: %s",
			strings.Join(reqs, ", "), in.Version, uvReason(errb.String()))
	}
	tags := <-tagsc
	if tags.err != nil {
		return nil, tags.err
	}
	return parsePylock(out.String(), tags.m)
}

var (
	pylockName   = regexp.MustCompile(`(?m)^name = "([^"]+)"`)
	pylockVer    = regexp.MustCompile(`(?m)^version = "([^"]+)"`)
	pylockSdist  = regexp.MustCompile(`(?m)^sdist = \{ url = "([^"]+)".*sha256 = "([0-9a-f]{64})"`)
	pylockWheel  = regexp.MustCompile(`\{ url = "([^"]+\.whl)"[^\n]*?sha256 = "([0-9a-f]{64})"`)
	pylockOthers = regexp.MustCompile(`(?m)^(directory|vcs|archive) = `)
)

// parsePylock reads the pylock.toml uv writes (one [[packages]] table per
// package, inline tables on one line each) without a TOML library.
func parsePylock(s string, tags map[string]int) ([]Distribution, error) {
	var dists []Distribution
	blocks := strings.Split(s, "[[packages]]")
	for _, b := range blocks[1:] {
		m := pylockName.FindStringSubmatch(b)
		v := pylockVer.FindStringSubmatch(b)
		if m == nil || v == nil {
			return nil, fmt.Errorf("uv lock: package without name or version: %.200s", b)
		}
		d := Distribution{Name: normalizeName(m[1]), Version: v[1]}
		if pylockOthers.MatchString(b) {
			return nil, errdefs.New(errdefs.ErrInvalidArgument,
				"requirement %s resolves to a local folder or repository; use a released version or a wheel", d.Name)
		}
		best := -1
		for _, w := range pylockWheel.FindAllStringSubmatch(b, -1) {
			if r, ok := wheelRank(w[1], tags); ok && (best < 0 || r < best) {
				best, d.URL, d.SHA256 = r, w[1], w[2]
			}
		}
		if d.URL == "" {
			sd := pylockSdist.FindStringSubmatch(b)
			if sd == nil {
				return nil, errdefs.New(errdefs.ErrInvalidArgument, "%s %s has no wheel for this interpreter and no sdist", d.Name, d.Version)
			}
			d.URL, d.SHA256 = sd[1], sd[2]
		}
		dists = append(dists, d)
	}
	sort.Slice(dists, func(i, j int) bool { return dists[i].Name < dists[j].Name })
	return dists, nil
}

// wheelRank is the best (lowest) rank among a wheel's tags in the
// interpreter's ordered tag list; ok is false if it supports none.
func wheelRank(url string, tags map[string]int) (int, bool) {
	name := url[strings.LastIndex(url, "/")+1:]
	parts := strings.Split(strings.TrimSuffix(name, ".whl"), "-")
	if len(parts) < 5 {
		return 0, false
	}
	py, abi, plat := parts[len(parts)-3], parts[len(parts)-2], parts[len(parts)-1]
	best, ok := 0, false
	for _, p := range strings.Split(py, ".") {
		for _, a := range strings.Split(abi, ".") {
			for _, pl := range strings.Split(plat, ".") {
				if r, found := tags[p+"-"+a+"-"+pl]; found && (!ok || r < best) {
					best, ok = r, true
				}
			}
		}
	}
	return best, ok
}

// tagsScript prints the interpreter's supported wheel tags, best first,
// with the packaging library pip vendors.
const tagsScript = `import json
from pip._vendor.packaging import tags
print(json.dumps([str(t) for t in tags.sys_tags()]))`

// tagsCall is one run of tagsScript, shared by concurrent callers.
type tagsCall struct {
	done chan struct{}
	m    map[string]int
	err  error
}

// tags returns in's wheel tags ranked (0 = best). Concurrent callers (the
// resolver and speculative installs) share one run of the interpreter; a
// failed run is not kept.
func (f *interpreters) tags(ctx context.Context, in *Interpreter) (map[string]int, error) {
	f.mu.Lock()
	if f.tagCache == nil {
		f.tagCache = map[string]*tagsCall{}
	}
	tc, ok := f.tagCache[in.Path]
	if !ok {
		tc = &tagsCall{done: make(chan struct{})}
		f.tagCache[in.Path] = tc
	}
	f.mu.Unlock()
	if ok {
		select {
		case <-tc.done:
			return tc.m, tc.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	tc.m, tc.err = f.loadTags(ctx, in)
	if tc.err != nil {
		f.mu.Lock()
		delete(f.tagCache, in.Path)
		f.mu.Unlock()
	}
	close(tc.done)
	return tc.m, tc.err
}

// loadTags returns in's ranked tags from the tags folder when they were
// kept for this very interpreter (binary, version, platform, pip), else
// runs tagsScript (an interpreter start and pip's packaging import: 0.1 s
// idle, 0.5 s on a loaded machine, on the way to the first speculative
// install) and keeps them.
func (f *interpreters) loadTags(ctx context.Context, in *Interpreter) (map[string]int, error) {
	key := tagsKey(in)
	file := ""
	if f.tagsDir != "" && key != "" {
		file = filepath.Join(f.tagsDir, key+".json")
		var list []string
		if b, err := os.ReadFile(file); err == nil && json.Unmarshal(b, &list) == nil && len(list) > 0 {
			return rankTags(list), nil
		}
	}
	out, err := exec.CommandContext(ctx, in.Path, "-I", "-c", tagsScript).Output()
	if err != nil {
		return nil, fmt.Errorf("wheel tags of %s (needs pip): %w", in.Path, err)
	}
	var list []string
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, err
	}
	if file != "" && os.MkdirAll(f.tagsDir, 0o755) == nil {
		writeFileAtomic(file, out)
	}
	return rankTags(list), nil
}

// tagsKey names the kept tags of in: its binary (size, modification
// time), version, platform and the pip whose packaging computes them; ""
// if the binary cannot be read.
func tagsKey(in *Interpreter) string {
	bin, err := filepath.EvalSymlinks(in.Path)
	if err != nil {
		return ""
	}
	st, err := os.Stat(bin)
	if err != nil {
		return ""
	}
	var pip time.Time
	if ps, err := os.Stat(filepath.Join(in.Prefix, "lib", "python"+PythonMinor(in.Version), "site-packages", "pip")); err == nil {
		pip = ps.ModTime()
	}
	return hashJSON([]any{bin, st.Size(), st.ModTime(), in.Version, in.Platform, in.CacheTag, pip})[:32]
}

// rankTags maps tags, best first, to their rank (0 = best).
func rankTags(list []string) map[string]int {
	m := make(map[string]int, len(list))
	for i, t := range list {
		if _, ok := m[t]; !ok {
			m[t] = i
		}
	}
	return m
}

var uvNoise = regexp.MustCompile(`[×╰─▶│]+`)

// uvReason turns uv's error report into one paragraph.
func uvReason(out string) string {
	var parts []string
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(uvNoise.ReplaceAllString(line, ""))
		if t == "" || strings.HasPrefix(t, "hint:") && len(parts) > 3 {
			continue
		}
		t = strings.TrimPrefix(t, "error: ")
		parts = append(parts, t)
	}
	s := strings.Join(parts, " ")
	s = strings.ReplaceAll(s, "dependencies cause: because", "dependencies: because")
	return strings.TrimSpace(s)
}
