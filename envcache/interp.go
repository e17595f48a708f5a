package envcache

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Interpreter is a CPython found on the machine.
type Interpreter struct {
	// Path is the real interpreter binary (never a pyenv shim).
	Path string `json:"path"`
	// Version is the full version, e.g. "3.11.7".
	Version string `json:"version"`
	// Prefix is sys.base_prefix: the folder holding its standard library.
	// A container mounts it read-only at the same path.
	Prefix string `json:"prefix"`
	// CacheTag is sys.implementation.cache_tag, e.g. "cpython-311"; the
	// bytecode in a package folder is compiled for it.
	CacheTag string `json:"cache_tag"`
	// Platform is sysconfig.get_platform() plus the libc, e.g.
	// "linux-x86_64-glibc2.36"; resolutions are keyed by it.
	Platform string `json:"platform"`
}

// probeScript prints an interpreter's facts as JSON. It runs with -I -S so
// it costs about one interpreter start.
const probeScript = `import sys, sysconfig, json, os
libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else ""
print(json.dumps({"version": "%d.%d.%d" % sys.version_info[:3], "prefix": sys.base_prefix,
 "cache_tag": sys.implementation.cache_tag,
 "platform": sysconfig.get_platform() + "-" + (libc or "").replace(" ", ""),
 "executable": os.path.realpath(sys.executable)}))`

// interpreters finds and probes the CPython 3 interpreters of the machine.
type interpreters struct {
	dirs []string // extra prefixes or bin folders (--python-dir)

	mu       sync.Mutex
	probed   map[string]*Interpreter   // by binary path
	all      []*Interpreter            // nil until scanned
	tagCache map[string]map[string]int // wheel tags by binary path
}

// candidates lists python3.X binaries: --python-dir entries, pyenv
// versions, then PATH (pyenv shims skipped).
func (f *interpreters) candidates() []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		real, err := filepath.EvalSymlinks(p)
		if err != nil || seen[real] || strings.Contains(real, "/shims/") {
			return
		}
		if st, err := os.Stat(real); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return
		}
		seen[real] = true
		out = append(out, real)
	}
	glob := func(dir string) {
		ms, _ := filepath.Glob(filepath.Join(dir, "python3.[0-9]*"))
		sort.Strings(ms)
		for _, m := range ms {
			if isVersionedPython(filepath.Base(m)) {
				add(m)
			}
		}
	}
	for _, d := range f.dirs {
		glob(filepath.Join(d, "bin"))
		glob(d)
	}
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		if home, err := os.UserHomeDir(); err == nil {
			root = filepath.Join(home, ".pyenv")
		}
	}
	if root != "" {
		vs, _ := filepath.Glob(filepath.Join(root, "versions", "*", "bin"))
		for _, v := range vs {
			glob(v)
		}
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if d != "" && !strings.Contains(d, "/shims") {
			glob(d)
		}
	}
	return out
}

// isVersionedPython accepts python3.11 but not python3.11-config.
func isVersionedPython(base string) bool {
	rest, ok := strings.CutPrefix(base, "python3.")
	if !ok {
		return false
	}
	_, err := strconv.Atoi(rest)
	return err == nil
}

func (f *interpreters) probe(ctx context.Context, path string) (*Interpreter, error) {
	f.mu.Lock()
	if in, ok := f.probed[path]; ok {
		f.mu.Unlock()
		return in, nil
	}
	f.mu.Unlock()
	out, err := exec.CommandContext(ctx, path, "-I", "-S", "-c", probeScript).Output()
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	var r struct {
		Interpreter
		Executable string `json:"executable"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	in := r.Interpreter
	in.Path = path
	f.mu.Lock()
	if f.probed == nil {
		f.probed = map[string]*Interpreter{}
	}
	f.probed[path] = &in
	f.mu.Unlock()
	return &in, nil
}

// List returns every interpreter found, newest version first.
func (f *interpreters) List(ctx context.Context) []*Interpreter {
	f.mu.Lock()
	if f.all != nil {
		defer f.mu.Unlock()
		return f.all
	}
	f.mu.Unlock()
	var all []*Interpreter
	seen := map[string]bool{}
	for _, c := range f.candidates() {
		in, err := f.probe(ctx, c)
		if err != nil || seen[in.Version] {
			continue // first found wins: --python-dir, then pyenv, then PATH
		}
		seen[in.Version] = true
		all = append(all, in)
	}
	sort.SliceStable(all, func(i, j int) bool { return versionLess(all[j].Version, all[i].Version) })
	f.mu.Lock()
	f.all = all
	f.mu.Unlock()
	return all
}

// Find returns the newest interpreter matching version ("3.11" or
// "3.11.7"). It returns ErrNotFound, listing what exists, if none does.
func (f *interpreters) Find(ctx context.Context, version string) (*Interpreter, error) {
	// Probe only binaries named for the version first (a probe is an
	// interpreter start); list everything only to explain a miss.
	parts := strings.Split(version, ".")
	if len(parts) >= 2 {
		var best *Interpreter
		for _, c := range f.candidates() {
			if filepath.Base(c) != "python"+parts[0]+"."+parts[1] {
				continue
			}
			in, err := f.probe(ctx, c)
			if err != nil || !(in.Version == version || strings.HasPrefix(in.Version, version+".")) {
				continue
			}
			if best == nil || versionLess(best.Version, in.Version) {
				best = in
			}
		}
		if best != nil {
			return best, nil
		}
	}
	all := f.List(ctx)
	for _, in := range all {
		if in.Version == version || strings.HasPrefix(in.Version, version+".") {
			return in, nil
		}
	}
	var have []string
	for _, in := range all {
		have = append(have, fmt.Sprintf("%s (%s)", in.Version, in.Path))
	}
	found := "none"
	if len(have) > 0 {
		found = strings.Join(have, ", ")
	}
	return nil, errdefs.WithHint(errdefs.ErrNotFound,
		"install it (e.g. `pyenv install "+version+"`) or point --python-dir at its prefix",
		"no Python %s interpreter on this machine; found: %s", version, found)
}

// versionLess compares dotted versions numerically.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
