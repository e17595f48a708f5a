package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	urfave "github.com/urfave/cli/v2"
)

// defaultEnvGCAge is how long `env gc` keeps unused resolutions and
// packages.
const defaultEnvGCAge = 30 * 24 * time.Hour

func (e *Env) envCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "env",
		Usage: "Python function environments: installed packages and interpreters",
		Description: "Each package version is installed once on the machine, into a read-only folder under\n" +
			"~/.cache/lakehouse/envcache/pkgs (shared by every data dir; LAKEHOUSE_ENVCACHE_DIR moves it); a function's environment is its interpreter plus those folders.",
		Subcommands: []*urfave.Command{
			{Name: "ls", Usage: "list installed packages (name, version, interpreter, size, last used)", Action: e.envList},
			{
				Name: "install", Usage: "resolve and install an environment ahead of its functions", ArgsUsage: "REQUIREMENT...",
				Description: "Resolves the requirements (pyarrow is always added) for the interpreter, installs what is\n" +
					"missing and prints the environment. Functions with the same spec then start without waiting.",
				Flags: append([]urfave.Flag{
					&urfave.StringFlag{Name: "python", Value: "3.11", Usage: "Python version: 3.X or 3.X.Y"},
				}, envIndexFlags()...),
				Action: e.envInstall,
			},
			{Name: "pythons", Usage: "list the Python interpreters found ($LAKEHOUSE_PYTHON, --python-dir, pyenv, PATH)",
				Flags:  []urfave.Flag{&urfave.StringSliceFlag{Name: "python-dir", Usage: "extra interpreter prefix or bin folder"}},
				Action: e.envPythons},
			{
				Name: "verify", Usage: "check installed packages against their wheels' RECORD hashes",
				Description: "Hashes every file of every installed package and compares it with the SHA-256 in its\n" +
					"wheel's RECORD (or, for bytecode compiled after install, the manifest written then), and\n" +
					"checks that nothing was added or removed and that no file or folder is writable.\n" +
					"Exits 1 when anything differs. --fix removes damaged packages (the next run installs\n" +
					"them again) and renews the stamps of packages whose content is intact.",
				Flags: []urfave.Flag{
					&urfave.BoolFlag{Name: "fix", Aliases: []string{"remove"}, Usage: "remove damaged packages and renew stale stamps"},
				},
				Action: e.envVerify,
			},
			{
				Name: "gc", Usage: "remove packages no cached resolution uses",
				Description: "Drops cached resolutions not used for --older-than, then removes every installed package\n" +
					"that no remaining resolution uses and that was not used for --older-than.\n" +
					"--older-than 0 removes only packages no resolution uses.",
				Flags: []urfave.Flag{
					&urfave.DurationFlag{Name: "older-than", Value: defaultEnvGCAge, Usage: "keep what was used more recently than this"},
					&urfave.BoolFlag{Name: "dry-run", Usage: "list what would be removed"},
				},
				Action: e.envGC,
			},
		},
	}
}

// envIndexFlags say where packages and interpreters come from.
func envIndexFlags() []urfave.Flag {
	return []urfave.Flag{
		&urfave.StringFlag{Name: "index-url", Usage: "package index (default $PIP_INDEX_URL, else PyPI)"},
		&urfave.StringSliceFlag{Name: "find-links", Usage: "folder of wheels and sdists (repeatable)"},
		&urfave.BoolFlag{Name: "no-index", Usage: "use only --find-links folders (air-gapped machines)"},
		&urfave.StringSliceFlag{Name: "python-dir", Usage: "extra interpreter prefix or bin folder (repeatable)"},
	}
}

// envCache opens the package cache under the data directory.
func (e *Env) envCache(pythonDirs []string) (*envcache.Cache, error) {
	return envcache.New(e.envCacheConfig(e.defaultIndex(), pythonDirs))
}

// defaultIndex is where packages come from: $PIP_INDEX_URL, else PyPI.
func (e *Env) defaultIndex() envcache.IndexOptions {
	return envcache.IndexOptions{IndexURL: e.Getenv("PIP_INDEX_URL")}
}

// envCacheDir is the package cache: $LAKEHOUSE_ENVCACHE_DIR, else one per
// user shared by all data dirs, under the user's cache folder
// ($XDG_CACHE_HOME/lakehouse/envcache, else ~/.cache/lakehouse/envcache),
// so a package downloaded once serves every project and data dir.
func (e *Env) envCacheDir() string {
	if dir := e.Getenv(envEnvCacheDir); dir != "" {
		return dir
	}
	if x := e.Getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "lakehouse", "envcache")
	}
	home := e.Getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if home == "" {
		// No home: keep the packages with the data.
		return filepath.Join(e.DataDir, "envcache")
	}
	return filepath.Join(home, ".cache", "lakehouse", "envcache")
}

func (e *Env) envCacheIndex(idx envcache.IndexOptions, pythonDirs []string) (*envcache.Cache, error) {
	return envcache.New(e.envCacheConfig(idx, pythonDirs))
}

// envCacheConfig is the package cache's configuration.
func (e *Env) envCacheConfig(idx envcache.IndexOptions, pythonDirs []string) envcache.Config {
	return envcache.Config{
		Dir:         e.envCacheDir(),
		DownloadDir: e.Getenv(envEnvCacheDownloads),
		Index:       idx,
		PythonDirs:  pythonDirs,
		Getenv:      e.machineEnv, // the interpreters the plan names
		Log:         e.Log,
	}
}

type envInstallView struct {
	Python   string           `json:"python"`
	Path     string           `json:"interpreter"`
	Packages []envPackageView `json:"packages"`
	Folders  []string         `json:"folders"`
}

func (e *Env) envInstall(c *urfave.Context) error {
	reqs := c.Args().Slice()
	idx := envcache.IndexOptions{IndexURL: c.String("index-url"), FindLinks: c.StringSlice("find-links"), NoIndex: c.Bool("no-index")}
	if idx.IndexURL == "" {
		idx.IndexURL = e.Getenv("PIP_INDEX_URL")
	}
	if idx.NoIndex && len(idx.FindLinks) == 0 {
		return usageError(c, "--no-index needs at least one --find-links folder")
	}
	cache, err := e.envCacheIndex(idx, c.StringSlice("python-dir"))
	if err != nil {
		return err
	}
	env, err := cache.Environment(c.Context, envcache.Spec{Python: c.String("python"), Requirements: reqs})
	if err != nil {
		return err
	}
	// The bytecode is part of the install this command is for.
	if err := cache.Wait(c.Context); err != nil {
		return err
	}
	// Sizes as installed, bytecode included.
	installed, err := cache.Packages()
	if err != nil {
		return err
	}
	byHash := map[string]*envcache.Package{}
	for _, p := range installed {
		byHash[p.Hash] = p
	}
	pkgs := make([]*envcache.Package, len(env.Packages))
	for i, p := range env.Packages {
		pkgs[i] = p
		if q := byHash[p.Hash]; q != nil {
			pkgs[i] = q
		}
	}
	v := envInstallView{Python: env.Python.Version, Path: env.Python.Path, Packages: viewPackages(pkgs), Folders: env.Paths()}
	return e.emit(v, func(w io.Writer) error {
		if _, err := fmt.Fprintf(w, "Python %s (%s)\n", v.Python, v.Path); err != nil {
			return err
		}
		t := e.newTable("PACKAGE", "VERSION", "SIZE", "FOLDER")
		for i, p := range v.Packages {
			t.row(p.Name, p.Version, humanBytes(p.Size), v.Folders[i])
		}
		return t.write(w)
	})
}

type envPackageView struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	Python   string    `json:"python"`
	Size     int64     `json:"size"`
	LastUsed time.Time `json:"last_used"`
	Hash     string    `json:"hash"`
	File     string    `json:"file"`
}

func viewPackages(ps []*envcache.Package) []envPackageView {
	out := make([]envPackageView, 0, len(ps))
	for _, p := range ps {
		out = append(out, envPackageView{Name: p.Name, Version: p.Version, Python: p.CacheTag, Size: p.Size,
			LastUsed: p.LastUsed.UTC().Truncate(time.Second), Hash: p.Hash, File: p.Filename})
	}
	return out
}

func (e *Env) envList(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	cache, err := e.envCache(nil)
	if err != nil {
		return err
	}
	ps, err := cache.Packages()
	if err != nil {
		return err
	}
	views := viewPackages(ps)
	return e.emit(views, func(w io.Writer) error {
		t := e.newTable("PACKAGE", "VERSION", "PYTHON", "SIZE", "LAST USED")
		for _, v := range views {
			t.row(v.Name, v.Version, v.Python, humanBytes(v.Size), formatTime(v.LastUsed))
		}
		return t.write(w)
	})
}

type envPythonView struct {
	Version  string `json:"version"`
	Path     string `json:"path"`
	Platform string `json:"platform"`
}

func (e *Env) envPythons(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	cache, err := e.envCache(c.StringSlice("python-dir"))
	if err != nil {
		return err
	}
	var views []envPythonView
	for _, in := range cache.Interpreters(c.Context) {
		views = append(views, envPythonView{Version: in.Version, Path: in.Path, Platform: in.Platform})
	}
	views = nonNil(views)
	return e.emit(views, func(w io.Writer) error {
		t := e.newTable("PYTHON", "PATH", "PLATFORM")
		for _, v := range views {
			t.row(v.Version, v.Path, v.Platform)
		}
		return t.write(w)
	})
}

type envGCView struct {
	DryRun  bool             `json:"dry_run"`
	Removed []envPackageView `json:"removed"`
	Freed   int64            `json:"freed"`
}

func (e *Env) envGC(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	if c.Duration("older-than") < 0 {
		return usageError(c, "--older-than must not be negative")
	}
	cache, err := e.envCache(nil)
	if err != nil {
		return err
	}
	removed, err := cache.GC(c.Context, envcache.GCOptions{OlderThan: c.Duration("older-than"), DryRun: c.Bool("dry-run")})
	if err != nil {
		return err
	}
	v := envGCView{DryRun: c.Bool("dry-run"), Removed: viewPackages(removed)}
	for _, p := range removed {
		v.Freed += p.Size
	}
	return e.emit(v, func(w io.Writer) error {
		verb := "removed"
		if v.DryRun {
			verb = "would remove"
		}
		for _, p := range v.Removed {
			if _, err := fmt.Fprintf(w, "%s %s %s (%s)\n", verb, p.Name, p.Version, p.Python); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(w, "%s %s, %s\n", verb, plural(int64(len(v.Removed)), "package", "packages"), humanBytes(v.Freed))
		return err
	})
}

type envVerifyView struct {
	Packages int                `json:"packages"`
	Files    int                `json:"files"`
	Bytes    int64              `json:"bytes"`
	Seconds  float64            `json:"seconds"`
	Fix      bool               `json:"fix"`
	Differ   []envVerifyPkgView `json:"differ"`
}

type envVerifyPkgView struct {
	envPackageView
	Folder      string                `json:"folder"`
	Differences []envcache.Difference `json:"differences"`
	Removed     bool                  `json:"removed,omitempty"`
	Restamped   bool                  `json:"restamped,omitempty"`
}

// envVerify is `lakehouse env verify [--fix]`.
func (e *Env) envVerify(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	cache, err := e.envCache(nil)
	if err != nil {
		return err
	}
	defer cache.Close()
	fix := c.Bool("fix")
	rep, err := cache.Verify(c.Context, envcache.VerifyOptions{Fix: fix})
	if err != nil {
		return err
	}
	v := envVerifyView{Packages: rep.Packages, Files: rep.Files, Bytes: rep.Bytes, Seconds: rep.Took.Seconds(), Fix: fix,
		Differ: []envVerifyPkgView{}}
	damaged := 0
	for _, pc := range rep.Differ {
		v.Differ = append(v.Differ, envVerifyPkgView{envPackageView: viewPackages([]*envcache.Package{pc.Package})[0],
			Folder: pc.Package.Dir, Differences: pc.Differences, Removed: pc.Removed, Restamped: pc.Restamped})
		if pc.Damaged() {
			damaged++
		}
	}
	err = e.emit(v, func(w io.Writer) error {
		for _, p := range v.Differ {
			what := "damaged"
			switch {
			case p.Removed:
				what = "damaged, removed (the next run installs it again)"
			case p.Restamped:
				what = "file metadata changed, content intact: stamp renewed"
			case len(p.Differences) == 1 && p.Differences[0].Kind == envcache.DiffStamp:
				what = "file metadata changed, content intact"
			case len(p.Differences) == 1 && p.Differences[0].Kind == envcache.DiffUnsealed:
				what = "installed by an older lakehouse, cannot be verified (--fix removes it; the next run installs it again)"
			}
			fmt.Fprintf(w, "%s %s (%s) in %s: %s\n", p.Name, p.Version, p.Python, p.Folder, what)
			for _, d := range p.Differences {
				fmt.Fprintf(w, "  %-9s %s", d.Kind, d.Path)
				if d.Detail != "" {
					fmt.Fprintf(w, ": %s", d.Detail)
				}
				fmt.Fprintln(w)
			}
		}
		_, err := fmt.Fprintf(w, "checked %s, %s (%s) in %.2f s: %d differ\n",
			plural(int64(v.Packages), "package", "packages"), plural(int64(v.Files), "file", "files"),
			humanBytes(v.Bytes), v.Seconds, len(v.Differ))
		return err
	})
	if err != nil || len(v.Differ) == 0 || fix {
		return err
	}
	hint := "renew their stamps with `lakehouse env verify --fix`"
	if damaged > 0 {
		hint = "remove the damaged packages with `lakehouse env verify --fix`; the next run installs them again"
	}
	return &verifyFailed{msg: fmt.Sprintf("%d of %d installed packages differ from what was installed", len(v.Differ), v.Packages), hint: hint}
}

// verifyFailed is `env verify` finding differences: exit 1.
type verifyFailed struct{ msg, hint string }

func (v *verifyFailed) Error() string { return v.msg + "\n" + v.hint }

// Hint implements errdefs.Hinted.
func (v *verifyFailed) Hint() string { return v.hint }
