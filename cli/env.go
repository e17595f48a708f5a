package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleetlaunch"
	urfave "github.com/urfave/cli/v2"
)

// Environment variables read by the command line.
const (
	envDataDir     = "LAKEHOUSE_DATA_DIR"
	envUser        = "LAKEHOUSE_USER"
	envLockTimeout = "LAKEHOUSE_LOCK_TIMEOUT"
	envAddr        = "LAKEHOUSE_ADDR"
	envAPIKey      = "LAKEHOUSE_API_KEY"
	// envTLSCA is the PEM file of the CA of a grpc+tls:// server.
	envTLSCA   = "LAKEHOUSE_TLS_CA"
	envNoColor = "NO_COLOR"
)

// defaultLockTimeout is how long a command waits for another lakehouse
// process to release the catalog file.
const defaultLockTimeout = 3 * time.Second

// Output formats of -O.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// Env is everything a command runs with: its streams and environment, the
// settings resolved from global flags and the profile, and (opened on first
// use) the catalog service.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (os.Getenv outside tests).
	Getenv func(string) string
	// StdoutTTY and StderrTTY say whether the streams are terminals: tables
	// get colour and imports a progress line only there.
	StdoutTTY, StderrTTY bool
	// Now is the commit clock handed to the catalog; nil means real time.
	Now func() time.Time

	// Resolved by before.
	DataDir     string
	ProfileName string
	Output      string
	Verbose     bool
	Log         *slog.Logger

	// Addr is the server the commands talk to ("" in embedded mode):
	// --addr, else $LAKEHOUSE_ADDR, else the profile's addr.
	Addr string

	profile *Profile
	svc     catalog.Service
	scans   catalog.TableScanner
	// remote is the server's client when Addr is set (then also svc).
	remote *flight.Client
	// exclusive opens the catalog file for this process alone (serve).
	exclusive bool
	// warehouseArg and s3EndpointArg are --warehouse and --s3-endpoint.
	warehouseArg, s3EndpointArg string
	// fleetRuns runs the Python models of a control plane's runs on its
	// workers (serve --role control; nil elsewhere).
	fleetRuns *fleetlaunch.Launcher
	// fleetCapacity is the alive workers' cores and memory, together.
	fleetCapacity func(ctx context.Context) (cores int, memory int64)
}

func globalFlags() []urfave.Flag {
	return []urfave.Flag{
		&urfave.StringFlag{Name: "data-dir", Usage: "state of the embedded catalog (env " + envDataDir + ")", DefaultText: "~/.lakehouse"},
		&urfave.StringFlag{Name: "addr", Usage: "talk to the lakehouse server at host:port (or grpc+tls://host:port, its CA in env " + envTLSCA + ") instead of the local data dir (env " + envAddr + ", or the profile's addr)"},
		&urfave.StringFlag{Name: "warehouse", Usage: "where a new catalog keeps its tables: file:///path or s3://bucket/prefix (env " + envWarehouse + "); later commands use the one stored in the data dir", DefaultText: "<data-dir>/warehouse"},
		&urfave.StringFlag{Name: "s3-endpoint", Usage: "URL of an S3-compatible service such as MinIO, addressed path-style (env " + envS3Endpoint + ")"},
		&urfave.StringFlag{Name: "profile", Value: "default", Usage: "profile in <data-dir>/profiles.json (active branch, user, namespace)"},
		&urfave.StringFlag{Name: "output", Aliases: []string{"O"}, Value: outputTable, Usage: "output format: table or json"},
		&urfave.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log what happens on stderr"},
		// normalizeArgs turns --version into the version command.
		&urfave.BoolFlag{Name: "version", Usage: "print the version of this build (the version command)"},
	}
}

// before resolves the global flags and their environment variables.
func (e *Env) before(c *urfave.Context) error {
	e.Output = c.String("output")
	// query renders more formats (csv, jsonl, parquet, arrow); it checks them.
	if e.Output != outputTable && e.Output != outputJSON && c.Args().First() != "query" {
		return usageError(c, "invalid output format %q: use table or json", e.Output)
	}
	e.Verbose = c.Bool("verbose")
	level := slog.LevelWarn
	if e.Verbose {
		level = slog.LevelDebug
	}
	e.Log = slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: level}))

	e.ProfileName = c.String("profile")
	if err := checkProfileName(e.ProfileName); err != nil {
		return usageError(c, "%v", err)
	}

	e.DataDir = c.String("data-dir")
	if e.DataDir == "" {
		e.DataDir = e.Getenv(envDataDir)
	}
	if e.DataDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return errdefs.WithHint(errdefs.ErrFailedPrecondition, "set --data-dir or "+envDataDir,
				"cannot find the home directory for the default data directory: %v", err)
		}
		e.DataDir = filepath.Join(home, ".lakehouse")
	}
	if abs, err := filepath.Abs(e.DataDir); err == nil {
		e.DataDir = abs
	}
	e.warehouseArg, e.s3EndpointArg = c.String("warehouse"), c.String("s3-endpoint")
	e.Addr = c.String("addr")
	if e.Addr == "" {
		e.Addr = e.Getenv(envAddr)
	}
	return nil
}

// JSON reports whether -O json was given.
func (e *Env) JSON() bool { return e.Output == outputJSON }

// CatalogPath is the bbolt file of the embedded catalog.
func (e *Env) CatalogPath() string { return filepath.Join(e.DataDir, "catalog.db") }

// WarehouseDir is the default warehouse of the embedded catalog: its table
// data and metadata unless --warehouse named another when it was created.
func (e *Env) WarehouseDir() string { return filepath.Join(e.DataDir, "warehouse") }

// ProfilesPath is the profile file.
func (e *Env) ProfilesPath() string { return filepath.Join(e.DataDir, "profiles.json") }

// Service opens the catalog on first use.
func (e *Env) Service(ctx context.Context) (catalog.Service, error) {
	if e.svc != nil {
		return e.svc, nil
	}
	timeout := defaultLockTimeout
	if v := e.Getenv(envLockTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "use a duration such as 3s or 500ms",
				"invalid %s=%q", envLockTimeout, v)
		}
		timeout = d
	}
	p, err := e.Profile()
	if err != nil {
		return nil, err
	}
	if addr := e.serverAddr(p); addr != "" {
		return e.dial(addr, p)
	}
	start := time.Now()
	ws, err := e.resolveWarehouse()
	if err != nil {
		return nil, err
	}
	storage, err := e.openWarehouse(ctx, ws)
	if err != nil {
		return nil, err
	}
	svc, scans, err := openEmbedded(ctx, embeddedConfig{
		Exclusive:   e.exclusive,
		DataDir:     e.DataDir,
		Catalog:     e.CatalogPath(),
		Warehouse:   storage,
		CacheDir:    e.CacheDir(),
		S3:          warehouse.S3Options{Endpoint: e.s3Endpoint(ws.S3Endpoint)},
		LockTimeout: timeout,
		Author:      e.author(p),
		Now:         e.Now,
	})
	if err != nil {
		return nil, err
	}
	e.Log.Debug("opened catalog", "path", e.CatalogPath(), "took", time.Since(start))
	e.svc, e.scans = svc, scans
	return svc, nil
}

// close releases the service if it was opened.
func (e *Env) close() error {
	if e.svc == nil {
		return nil
	}
	err := e.svc.Close()
	e.svc, e.remote = nil, nil
	return err
}

// author is the profile's user, else $LAKEHOUSE_USER, else the OS user.
func (e *Env) author(p *Profile) string {
	if p != nil && p.User != "" {
		return p.User
	}
	if u := e.Getenv(envUser); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "lakehouse"
}

// commitOptions describes a commit made by this command.
func (e *Env) commitOptions(message string) (catalog.CommitOptions, error) {
	p, err := e.Profile()
	if err != nil {
		return catalog.CommitOptions{}, err
	}
	return catalog.CommitOptions{Author: e.author(p), Message: message}, nil
}

// activeBranch is the profile's active branch.
func (e *Env) activeBranch() (catalog.BranchName, error) {
	p, err := e.Profile()
	if err != nil {
		return "", err
	}
	return p.ActiveBranch, nil
}

// readRef parses the -r/--ref of a read command; "" is the active branch.
func (e *Env) readRef(s string) (catalog.Ref, error) {
	if s == "" {
		b, err := e.activeBranch()
		if err != nil {
			return catalog.Ref{}, err
		}
		return catalog.Ref{Name: string(b)}, nil
	}
	return catalog.ParseRef(s)
}

// writeBranch resolves the target branch of a write command: s, or the
// active branch when s is empty. The service refuses main, tags and missing
// branches.
func (e *Env) writeBranch(ctx context.Context, s string) (catalog.BranchName, error) {
	if s == "" {
		return e.activeBranch()
	}
	return e.branchArg(ctx, s)
}

// branchArg parses s where an existing branch is needed. A name that is not
// a valid branch name but is a tag (v1) gets the same "tags are read-only"
// error the service gives for the others.
func (e *Env) branchArg(ctx context.Context, s string) (catalog.BranchName, error) {
	b, err := catalog.ParseBranchName(s)
	if err == nil {
		return b, nil
	}
	if _, terr := catalog.ParseTagName(s); terr == nil {
		if svc, serr := e.Service(ctx); serr == nil && e.isTag(ctx, svc, s) {
			return "", tagWriteError(s)
		}
	}
	return "", err
}

// tagWriteError refuses a write to tag name.
func tagWriteError(name string) error {
	return errdefs.WithHint(errdefs.ErrFailedPrecondition,
		fmt.Sprintf("create a branch from it: `lakehouse branch create <user>.<name> --from-ref %s`", name),
		"%s is a tag, and tags are read-only", name)
}

func (e *Env) isTag(ctx context.Context, svc catalog.Service, name string) bool {
	tags, err := svc.ListTags(ctx)
	if err != nil {
		return false
	}
	for _, t := range tags {
		if string(t.Name) == name {
			return true
		}
	}
	return false
}

// namespace parses a -n flag; "" is the profile's namespace.
func (e *Env) namespace(s string) (catalog.Namespace, error) {
	if s != "" {
		return catalog.ParseNamespace(s)
	}
	p, err := e.Profile()
	if err != nil {
		return "", err
	}
	return p.Namespace, nil
}

// tableIdent parses a table name, "ns.table" or "table" in the namespace
// of nsFlag or the profile.
func (e *Env) tableIdent(name, nsFlag string) (catalog.TableIdent, error) {
	ns, err := e.namespace(nsFlag)
	if err != nil {
		return catalog.TableIdent{}, err
	}
	if nsFlag != "" && strings.Contains(name, ".") {
		id, err := catalog.ParseTableIdent(name, ns)
		if err == nil && id.Namespace != ns {
			return catalog.TableIdent{}, errdefs.New(errdefs.ErrInvalidArgument,
				"table %s is qualified with namespace %s but -n says %s; drop one of them", name, id.Namespace, ns)
		}
		return id, err
	}
	return catalog.ParseTableIdent(name, ns)
}
