package envcache

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Interpreter is a Python that was run to learn what its name does not
// tell.
type Interpreter struct {
	// Python is the binary as FindPythons found it; Version is the full
	// version, e.g. "3.11.7".
	Python
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
 "platform": sysconfig.get_platform() + "-" + (libc or "").replace(" ", "")}))`

// interpreters finds (FindPythons) and probes the interpreters of the
// machine.
type interpreters struct {
	search PythonSearch

	mu       sync.Mutex
	searched bool
	found    []Python
	probed   map[string]*Interpreter // by binary path
	all      []*Interpreter          // nil until listed
	tagCache map[string]*tagsCall    // wheel tags by binary path
	tagsDir  string                  // where wheel tags are kept between processes ("": not kept)
}

// pythons returns FindPythons(f.search), searching once.
func (f *interpreters) pythons() []Python {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.searched {
		f.found, f.searched = FindPythons(f.search), true
	}
	return f.found
}

// probe runs p to learn its full version, prefix, cache tag and platform.
func (f *interpreters) probe(ctx context.Context, p Python) (*Interpreter, error) {
	f.mu.Lock()
	if in, ok := f.probed[p.Path]; ok {
		f.mu.Unlock()
		return in, nil
	}
	f.mu.Unlock()
	out, err := exec.CommandContext(ctx, p.Path, "-I", "-S", "-c", probeScript).Output()
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", p.Path, err)
	}
	var in Interpreter
	if err := json.Unmarshal(out, &in); err != nil {
		return nil, fmt.Errorf("probe %s: %w", p.Path, err)
	}
	in.Minor, in.Path = p.Minor, p.Path
	f.mu.Lock()
	if f.probed == nil {
		f.probed = map[string]*Interpreter{}
	}
	f.probed[p.Path] = &in
	f.mu.Unlock()
	return &in, nil
}

// List probes every interpreter FindPythons finds, in its order (newest
// minor version first); one that fails to run is left out.
func (f *interpreters) List(ctx context.Context) []*Interpreter {
	f.mu.Lock()
	if f.all != nil {
		defer f.mu.Unlock()
		return f.all
	}
	f.mu.Unlock()
	all := []*Interpreter{}
	for _, p := range f.pythons() {
		if in, err := f.probe(ctx, p); err == nil {
			all = append(all, in)
		}
	}
	f.mu.Lock()
	f.all = all
	f.mu.Unlock()
	return all
}

// Find returns the interpreter that version ("3.11" or "3.11.7") runs
// with: PythonFor's choice, the one the plan names. It returns ErrNotFound
// if there is none or, for a patch release, if running the chosen binary
// shows another release.
func (f *interpreters) Find(ctx context.Context, version string) (*Interpreter, error) {
	found := f.pythons()
	p, ok := PythonFor(found, version)
	if !ok {
		var have []string
		for _, p := range found {
			have = append(have, fmt.Sprintf("%s (%s)", p.Version, p.Path))
		}
		list := "none"
		if len(have) > 0 {
			list = strings.Join(have, ", ")
		}
		return nil, errdefs.WithHint(errdefs.ErrNotFound,
			"install it (e.g. `pyenv install "+version+"`) or point LAKEHOUSE_PYTHON at its binary",
			"no Python %s interpreter on this machine; found: %s", version, list)
	}
	in, err := f.probe(ctx, p)
	if err != nil {
		return nil, errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"repair it, or point LAKEHOUSE_PYTHON at another Python "+version+" binary",
			"Python %s at %s does not run: %v", version, p.Path, err)
	}
	if in.Version != version && !strings.HasPrefix(in.Version, version+".") {
		return nil, errdefs.WithHint(errdefs.ErrNotFound,
			"point LAKEHOUSE_PYTHON at a Python "+version+" binary",
			"no Python %s interpreter on this machine: %s is Python %s", version, in.Path, in.Version)
	}
	return in, nil
}
