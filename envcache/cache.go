package envcache

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// DefaultIndexURL is PyPI's simple index.
const DefaultIndexURL = "https://pypi.org/simple"

// Config configures a Cache.
type Config struct {
	// Dir holds the cache: <data-dir>/envcache. Required.
	Dir string
	// Index says where packages come from. An empty IndexURL means
	// $PIP_INDEX_URL, else PyPI.
	Index IndexOptions
	// PythonDirs are extra interpreter prefixes or bin folders searched
	// after $LAKEHOUSE_PYTHON, before pyenv versions and PATH
	// (--python-dir; see FindPythons).
	PythonDirs []string
	// Getenv reads the variables that locate interpreters
	// (LAKEHOUSE_PYTHON, PYENV_ROOT, HOME, PATH); nil means os.Getenv.
	Getenv func(string) string
	// DownloadDir, if set, keeps downloaded wheels and sdists by hash so a
	// reinstall (e.g. after gc, or in tests) does not download again.
	DownloadDir string
	// Parallel is how many packages install at once (default 8: installs
	// are mostly download and unzip).
	Parallel int
	// RunnerRequirements are added to every spec: the runner needs
	// pyarrow. nil means {"pyarrow"}; tests of the cache's mechanics pass
	// an empty, non-nil slice.
	RunnerRequirements []string
	// Resolver is "uv", "pip" or "" ($LAKEHOUSE_RESOLVER, else auto: uv
	// when one can be had, else pip). Without UV, uv is the cache's own,
	// installed from the index on first need (uvtool.go); in auto mode a
	// uv that cannot be installed (offline) means pip, with a note in the
	// log.
	Resolver string
	// UV is the uv binary (default: $LAKEHOUSE_UV, else `uv` on PATH, else
	// the cache's own).
	UV string
	// SyncCompile compiles bytecode before an install counts as done.
	// By default bytecode is compiled in the background after the folder
	// is in place (imports work meanwhile, compiling in memory); Wait
	// waits for it.
	SyncCompile bool
	// Progress, if set, is told how far the package downloads have got
	// (calls never overlap; they come from the goroutines downloading,
	// so it must be quick).
	Progress func(DownloadProgress)
	// Log receives debug records (default: discard).
	Log *slog.Logger
}

// Validate checks the config and fills in defaults.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errdefs.New(errdefs.ErrInvalidArgument, "envcache: Dir is required")
	}
	if c.Index.IndexURL == "" && !c.Index.NoIndex {
		c.Index.IndexURL = os.Getenv("PIP_INDEX_URL")
		if c.Index.IndexURL == "" {
			c.Index.IndexURL = DefaultIndexURL
		}
	}
	if c.Index.NoIndex && len(c.Index.FindLinks) == 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "envcache: NoIndex needs at least one FindLinks folder")
	}
	for i, f := range c.Index.FindLinks {
		if !strings.Contains(f, "://") {
			abs, err := filepath.Abs(f)
			if err != nil {
				return err
			}
			c.Index.FindLinks[i] = abs
		}
	}
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.RunnerRequirements == nil {
		c.RunnerRequirements = []string{"pyarrow"}
	}
	if c.Resolver == "" {
		c.Resolver = os.Getenv("LAKEHOUSE_RESOLVER")
	}
	if c.UV == "" {
		c.UV = os.Getenv("LAKEHOUSE_UV")
	}
	if c.UV == "" && c.Resolver != "pip" {
		if p, err := exec.LookPath("uv"); err == nil {
			c.UV = p
		}
	}
	switch c.Resolver {
	case "":
		if c.UV != "" {
			c.Resolver = "uv"
		}
	case "pip", "uv":
	default:
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "use uv or pip (LAKEHOUSE_RESOLVER)",
			"envcache: unknown resolver %q", c.Resolver)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Cache resolves specs, installs packages and assembles environments. It is
// safe for concurrent use, also by several processes sharing Dir.
type Cache struct {
	cfg    Config
	log    *slog.Logger
	interp interpreters

	downloads     downloads
	resolverCalls atomic.Int64
	installs      atomic.Int64
	installing    atomic.Int64 // Environment calls installing now
	closed        atomic.Bool

	// inflight collapses concurrent resolutions of the same key in this
	// process; across processes the resolution file is simply rewritten.
	mu       sync.Mutex
	inflight map[string]*call

	// The cache's own uv (uvtool.go), installed at most once per Cache.
	uvMu    sync.Mutex
	uvPath  string
	uvErr   error
	uvErrAt time.Time
	uvNoted bool

	compiles  sync.WaitGroup
	compileMu sync.Mutex
	compiling map[string]bool
	compileQ  chan compileJob
}

type call struct {
	done chan struct{}
	res  *Resolution
	err  error
}

// New opens (creating if needed) the cache under cfg.Dir.
func New(cfg Config) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cache{cfg: cfg, log: cfg.Log, interp: interpreters{search: PythonSearch{Getenv: cfg.Getenv, Dirs: cfg.PythonDirs},
		tagsDir: filepath.Join(cfg.Dir, "interpreters")}, inflight: map[string]*call{},
		compiling: map[string]bool{}, compileQ: make(chan compileJob, 1024)}
	c.downloads.report = cfg.Progress
	go c.compileLoop()
	for _, d := range []string{c.pkgsDir(), c.resolutionsDir(), c.tmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// Installs are unpacked in tmp/<hash>-*/: one ext4 block group each.
	spreadSubdirs(c.tmpDir())
	return c, nil
}

func (c *Cache) pkgsDir() string        { return filepath.Join(c.cfg.Dir, "pkgs") }
func (c *Cache) resolutionsDir() string { return filepath.Join(c.cfg.Dir, "resolutions") }
func (c *Cache) tmpDir() string         { return filepath.Join(c.cfg.Dir, "tmp") }

// Dir is the cache's folder.
func (c *Cache) Dir() string { return c.cfg.Dir }

// ResolverCalls is how many times this Cache ran the resolver.
func (c *Cache) ResolverCalls() int64 { return c.resolverCalls.Load() }

// Installs is how many packages this Cache installed.
func (c *Cache) Installs() int64 { return c.installs.Load() }

// Interpreters lists the interpreters found on the machine (FindPythons),
// each run once to learn its full version and platform.
func (c *Cache) Interpreters(ctx context.Context) []*Interpreter { return c.interp.List(ctx) }

// Environment is an assembled environment: an interpreter and the package
// folders to put on sys.path, in order.
type Environment struct {
	Python   *Interpreter
	Packages []*Package
}

// Paths are the package folders in sys.path order.
func (e *Environment) Paths() []string {
	out := make([]string, len(e.Packages))
	for i, p := range e.Packages {
		out[i] = p.Dir
	}
	return out
}

// Environment resolves spec (or reuses its cached resolution), installs
// what is missing, and returns the assembled environment. It returns
// ErrInvalidArgument for a bad or unsatisfiable spec and ErrNotFound when
// no interpreter has the requested version.
func (c *Cache) Environment(ctx context.Context, spec Spec) (*Environment, error) {
	// Speculative installs run while the resolver does (speculate.go); the
	// ones the resolution did not use are abandoned when it is installed.
	var speculative sync.WaitGroup
	sctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		speculative.Wait()
	}()
	res, in, err := c.resolve(ctx, spec, func(in *Interpreter, reqs []string) {
		c.speculate(sctx, &speculative, in, reqs)
	})
	if err != nil {
		return nil, err
	}
	pkgs := make([]*Package, len(res.Distributions))
	c.installing.Add(1)
	defer c.installing.Add(-1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.cfg.Parallel)
	for _, i := range installOrder(res.Distributions) {
		d := res.Distributions[i]
		g.Go(func() error {
			p, err := c.install(gctx, in, d)
			if err != nil {
				return fmt.Errorf("install %s %s: %w", d.Name, d.Version, err)
			}
			touch(p, filepath.Join(c.pkgsDir(), p.Hash+".json"))
			if !p.Compiled {
				c.compileLater(in, p)
			}
			pkgs[i] = p
			return nil
		})
	}
	var sdk *Package
	if len(c.cfg.RunnerRequirements) > 0 {
		// The runner's other requirement: the lakehouse SDK, first on
		// sys.path.
		g.Go(func() error {
			p, err := c.installSDK(gctx, in)
			if err != nil {
				return fmt.Errorf("install the lakehouse SDK: %w", err)
			}
			touch(p, filepath.Join(c.pkgsDir(), p.Hash+".json"))
			if !p.Compiled {
				c.compileLater(in, p)
			}
			sdk = p
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if sdk != nil {
		pkgs = append([]*Package{sdk}, pkgs...)
	}
	return &Environment{Python: in, Packages: pkgs}, nil
}

// installOrder starts platform wheels (compiled, usually the big ones:
// numpy, pandas, pyarrow) before pure-Python ones, so the longest installs
// do not start last.
func installOrder(ds []Distribution) []int {
	order := make([]int, len(ds))
	for i := range order {
		order[i] = i
	}
	pure := func(d Distribution) bool { return strings.HasSuffix(d.Filename(), "-none-any.whl") }
	sort.SliceStable(order, func(a, b int) bool { return !pure(ds[order[a]]) && pure(ds[order[b]]) })
	return order
}

// Resolve locks spec for its interpreter and the configured index. A
// resolution already cached costs no resolver call.
func (c *Cache) Resolve(ctx context.Context, spec Spec) (*Resolution, *Interpreter, error) {
	return c.resolve(ctx, spec, nil)
}

// resolve is Resolve; onResolve, if set, is called just before the
// resolver runs.
func (c *Cache) resolve(ctx context.Context, spec Spec, onResolve func(*Interpreter, []string)) (*Resolution, *Interpreter, error) {
	if err := spec.Validate(); err != nil {
		return nil, nil, err
	}
	in, err := c.interp.Find(ctx, spec.Python)
	if err != nil {
		return nil, nil, err
	}
	reqs := spec.withRunner(c.cfg.RunnerRequirements)
	key := resolutionKey(reqs, in, c.cfg.Index)
	if r := readResolution(c.resolutionsDir(), key); r != nil {
		now := time.Now()
		os.Chtimes(filepath.Join(c.resolutionsDir(), key+".json"), now, now)
		return r, in, nil
	}
	c.mu.Lock()
	if cl, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			return cl.res, in, cl.err
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[key] = cl
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
		close(cl.done)
	}()

	start := time.Now()
	c.resolverCalls.Add(1)
	if onResolve != nil {
		onResolve(in, reqs)
	}
	resolver, uv, err := c.resolver(ctx)
	if err != nil {
		cl.err = err
		return nil, nil, err
	}
	var dists []Distribution
	if resolver == "uv" {
		dists, err = c.resolveUV(ctx, uv, in, reqs, c.cfg.Index)
	} else {
		dists, err = resolvePip(ctx, in, reqs, c.cfg.Index)
	}
	if err != nil {
		cl.err = err
		return nil, nil, err
	}
	r := &Resolution{Key: key, Spec: Spec{Python: spec.Python, Requirements: reqs}, Python: in.Version,
		Platform: in.Platform, Index: c.cfg.Index, Resolver: resolver, Created: time.Now().UTC(), Distributions: dists}
	if err := writeResolution(c.resolutionsDir(), r); err != nil {
		cl.err = err
		return nil, nil, err
	}
	c.log.Debug("resolved", "spec", reqs, "python", in.Version, "resolver", resolver, "packages", len(dists), "took", time.Since(start))
	cl.res = r
	return r, in, nil
}

// Packages lists the installed packages, by name and version.
func (c *Cache) Packages() ([]*Package, error) {
	ms, err := filepath.Glob(filepath.Join(c.pkgsDir(), "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Package
	for _, m := range ms {
		if p := c.readPackage(strings.TrimSuffix(filepath.Base(m), ".json")); p != nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		if out[i].Version != out[j].Version {
			return versionLess(out[i].Version, out[j].Version)
		}
		return out[i].CacheTag < out[j].CacheTag
	})
	return out, nil
}

// Resolutions lists the cached resolutions.
func (c *Cache) Resolutions() ([]*Resolution, error) {
	ms, err := filepath.Glob(filepath.Join(c.resolutionsDir(), "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Resolution
	for _, m := range ms {
		if r := readResolution(c.resolutionsDir(), strings.TrimSuffix(filepath.Base(m), ".json")); r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// GCOptions say what GC removes.
type GCOptions struct {
	// OlderThan: resolutions not used for this long are dropped first
	// (0 keeps every resolution).
	OlderThan time.Duration
	// DryRun reports without removing.
	DryRun bool
}

// GC removes resolutions unused for OlderThan, then every installed
// package that no remaining resolution uses and that was not used for
// OlderThan, and leftovers of interrupted installs. It returns what it
// removed (or would remove).
func (c *Cache) GC(ctx context.Context, opt GCOptions) ([]*Package, error) {
	now := time.Now()
	res, err := c.Resolutions()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{} // by file hash or URL
	for _, r := range res {
		if st, err := os.Stat(filepath.Join(c.resolutionsDir(), r.Key+".json")); err == nil && opt.OlderThan > 0 && now.Sub(st.ModTime()) > opt.OlderThan {
			if !opt.DryRun {
				os.Remove(filepath.Join(c.resolutionsDir(), r.Key+".json"))
			}
			continue
		}
		for _, d := range r.Distributions {
			used[d.SHA256+"|"+d.URL] = true
			if d.SHA256 != "" {
				used[d.SHA256] = true
			}
		}
	}
	pkgs, err := c.Packages()
	if err != nil {
		return nil, err
	}
	// Every environment holds this binary's SDK: it stays while any
	// resolution does.
	keepSDK := len(used) > 0
	var removed []*Package
	for _, p := range pkgs {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if used[p.SHA256] && p.SHA256 != "" || used[p.SHA256+"|"+p.URL] || keepSDK && isCurrentSDK(p) {
			continue
		}
		if now.Sub(p.LastUsed) < opt.OlderThan {
			continue
		}
		removed = append(removed, p)
		if opt.DryRun {
			continue
		}
		// The metadata file goes first: without it the folder is not
		// installed, and a concurrent install would redo it under the lock.
		release, err := c.lockPackage(ctx, p.Hash)
		if err != nil {
			return removed, err
		}
		os.Remove(filepath.Join(c.pkgsDir(), p.Hash+".json"))
		os.Remove(c.manifestFile(p.Hash))
		err = removeAll(p.Dir)
		release()
		if err != nil {
			return removed, err
		}
	}
	if !opt.DryRun {
		ents, _ := os.ReadDir(c.tmpDir())
		for _, e := range ents {
			if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > time.Hour {
				removeAll(filepath.Join(c.tmpDir(), e.Name()))
			}
		}
	}
	return removed, nil
}

var _ = json.Marshal
