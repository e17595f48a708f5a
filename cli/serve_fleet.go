package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
	urfave "github.com/urfave/cli/v2"
)

// Roles of serve.
const (
	roleAll     = "all"
	roleControl = "control"
	roleWorker  = "worker"
)

// Defaults of a worker's listeners: beside a control plane's defaults on
// the same machine.
const (
	defaultWorkerFlightAddr = "127.0.0.1:8816"
	defaultWorkerHTTPAddr   = "127.0.0.1:8182"
)

// fleetFlags are serve's flags of the control and worker roles.
func fleetFlags() []urfave.Flag {
	return []urfave.Flag{
		&urfave.DurationFlag{Name: "worker-timeout", Value: fleet.DefaultTimeout,
			Usage: "control: how long a worker may go without a heartbeat before it is dropped"},
		&urfave.StringFlag{Name: "join", Usage: "worker: the control plane to join, host:port or grpc+tls://host:port (required)"},
		&urfave.StringFlag{Name: "name", Usage: "worker: its name in the fleet (default: the host name)"},
		&urfave.StringFlag{Name: "key", Usage: "worker: an API key of role worker (default: env " + envAPIKey + ", or the profile's api_key)"},
		&urfave.DurationFlag{Name: "heartbeat", Value: fleet.DefaultInterval, Usage: "worker: time between heartbeats"},
		&urfave.StringFlag{Name: "advertise-addr",
			Usage: "worker: host:port at which the control plane and clients reach its Flight listener (default: --flight-addr)"},
		&urfave.StringFlag{Name: "shm-reserve", Value: "0",
			Usage: "worker: /dev/shm memory to allocate at start for the intermediates it fetches from other workers (such as 2GiB; " +
				"0: none), so that its first fetches write into pages already there; given back when the machine runs short of memory"},
	}
}

// roleFlags are the flags only some roles take, and those roles.
var roleFlags = map[string][]string{
	"worker-timeout":       {roleControl},
	"join":                 {roleWorker},
	"name":                 {roleWorker},
	"key":                  {roleWorker},
	"heartbeat":            {roleWorker},
	"advertise-addr":       {roleWorker},
	"shm-reserve":          {roleWorker},
	"max-upload-bytes":     {roleAll, roleControl},
	"upload-ttl":           {roleAll, roleControl},
	"max-project-bytes":    {roleAll, roleControl},
	"max-project-unpacked": {roleAll, roleControl},
}

// checkRoleFlags refuses an unknown role, and flags given to a role that
// does not take them.
func checkRoleFlags(c *urfave.Context, role string) error {
	if role != roleAll && role != roleControl && role != roleWorker {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "use --role all, control or worker",
			"invalid --role %q", role)
	}
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		roles, ok := roleFlags[name]
		if !ok || !c.IsSet(name) {
			continue
		}
		if !containsString(roles, role) {
			return usageError(c, "--%s is for --role %s, not %s", name, strings.Join(roles, " or "), role)
		}
	}
	if t := c.Duration("worker-timeout"); role == roleControl && t < time.Second {
		return usageError(c, "invalid --worker-timeout %s: use a duration of at least 1s, such as 10s", t)
	}
	return nil
}

// dirBytes is the bytes of the regular files right in dir (0 if none).
func dirBytes(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// setupFleet makes a control plane's registry of workers.
// stop receives what ends the fleet's runs with the server.
func (e *Env) setupFleet(ctx context.Context, c *urfave.Context, opts *flight.Options, stop *func()) error {
	timeout := c.Duration("worker-timeout")
	reg, err := fleet.NewRegistry(fleet.Config{Version: Version, Timeout: timeout, Log: e.Log,
		OnLost: func(w fleet.WorkerInfo) {
			fmt.Fprintf(e.Stderr, "worker %s (%s) lost: no heartbeat for %s\n", w.Name, w.Addr, timeout)
		},
		OnRegister: func(w fleet.WorkerInfo) {
			fmt.Fprintf(e.Stderr, "worker %s (%s) registered: epoch %d, %d cores, %s launcher\n", w.Name, w.Addr, w.Epoch, w.Cores, w.Launcher)
		}})
	if err != nil {
		return err
	}
	go reg.Run(ctx)
	opts.Fleet = reg
	if *stop, err = e.setupFleetRuns(reg, opts); err != nil {
		return err
	}
	return e.setupPlacer(ctx, reg, opts)
}

// workerSetup is a worker's flags, checked.
type workerSetup struct {
	join, name, key string
	interval        time.Duration
	// shmReserve is the bytes of spares allocated at start
	// (flight.Spares.Reserve).
	shmReserve int64
}

func (e *Env) workerFlags(c *urfave.Context) (workerSetup, error) {
	w := workerSetup{join: c.String("join"), name: c.String("name"), key: c.String("key"), interval: c.Duration("heartbeat")}
	if w.join == "" {
		return w, usageError(c, "a worker joins a control plane: give --join HOST:PORT")
	}
	if _, _, err := flight.ParseAddr(w.join); err != nil {
		return w, err
	}
	if w.name == "" {
		host, err := os.Hostname()
		if err != nil {
			return w, usageError(c, "cannot read the host name (%v): name the worker with --name", err)
		}
		w.name = strings.ToLower(host)
	}
	if err := fleet.ValidName(w.name); err != nil {
		return w, err
	}
	if w.key == "" {
		p, err := e.Profile()
		if err != nil {
			return w, err
		}
		w.key = e.apiKey(p)
	}
	if w.interval < 10*time.Millisecond {
		return w, usageError(c, "invalid --heartbeat %s: use a duration such as 2s", w.interval)
	}
	v, n := c.String("shm-reserve"), int64(0)
	var err error
	// 0 in any unit is none; anything else is a size.
	if f, ferr := strconv.ParseFloat(strings.TrimRight(strings.TrimSpace(v), "KMGTIBkmgtib "), 64); ferr != nil || f != 0 {
		n, err = duckdb.ParseSize(v)
	}
	if err != nil || n != 0 && n < flight.ReservePiece {
		return w, usageError(c, "invalid --shm-reserve %q: use 0 (none) or a size of at least %s, such as 2GiB", v, sizeText(flight.ReservePiece))
	}
	w.shmReserve = n
	return w, nil
}

// checkShmReserve refuses a reserve of more than half of what is free in
// the worker's /dev/shm folder, counting as free the spares an earlier
// worker left there (a worker killed with its reserve made is let start
// again: it removes them first).
func checkShmReserve(c *urfave.Context, ws workerSetup, shmDir string) error {
	if ws.shmReserve == 0 {
		return nil
	}
	dir := shmDir // or the nearest folder above it there is: it is made later
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	free := fleet.Probe(dir).ShmFreeBytes + dirBytes(filepath.Join(shmDir, "spares"))
	if ws.shmReserve > free/2 {
		return usageError(c, "invalid --shm-reserve %s: %s has %s free, and a reserve takes at most half of it",
			c.String("shm-reserve"), shmDir, sizeText(free&^(1<<20-1)))
	}
	return nil
}

// serveWorker runs a worker: its own Flight data plane and HTTP
// listeners over its data dir (package cache, scratch; never the
// catalog), and its membership of the control plane of --join.
func (e *Env) serveWorker(c *urfave.Context) error {
	ws, err := e.workerFlags(c)
	if err != nil {
		return err
	}
	shmDir := cmp.Or(e.Getenv(envShmDir), pipeline.DefaultShmDir())
	if err := checkShmReserve(c, ws, shmDir); err != nil {
		return err
	}
	queries, err := e.newWorkerQueries(c.Context, ws.name)
	if err != nil {
		return err
	}
	flightAddr, httpAddr := c.String("flight-addr"), c.String("http-addr")
	if !c.IsSet("flight-addr") {
		flightAddr = defaultWorkerFlightAddr
	}
	if !c.IsSet("http-addr") {
		httpAddr = defaultWorkerHTTPAddr
	}
	tls, err := serverTLS(c.String("tls-cert"), c.String("tls-key"))
	if err != nil {
		return err
	}
	workDir := filepath.Join(e.DataDir, "worker")
	wd, err := fleet.OpenWorkdir(workDir)
	if err != nil {
		return err
	}
	defer wd.Close()
	if err := queries.openCache(workDir); err != nil {
		return err
	}
	if err := os.MkdirAll(shmDir, 0o755); err != nil {
		return errdefs.New(errdefs.ErrUnavailable, "cannot create the /dev/shm folder %s: %v", shmDir, err)
	}
	host, err := e.hostInfo(c.Context, flight.ServerInfoBody{})
	if err != nil {
		return err
	}
	control, err := flight.Dial(ws.join, flight.DialOptions{APIKey: ws.key, CAFile: e.Getenv(envTLSCA),
		// A restarted control plane is found within a heartbeat or two.
		RetryDelay: ws.interval})
	if err != nil {
		return err
	}
	defer control.Close()
	functions, err := e.startWorkerFunctions(c.Context, ws, control, shmDir, queries)
	if err != nil {
		return err
	}
	defer functions.close()

	flis, hlis, err := listen(flightAddr, httpAddr)
	if err != nil {
		return err
	}
	advertise, err := advertiseAddr(c.String("advertise-addr"), flis.Addr())
	if err != nil {
		flis.Close()
		hlis.Close()
		return err
	}
	if !isLoopback(flightAddr) && tls == nil {
		fmt.Fprintf(e.Stderr, "warning: %s is reachable beyond this machine without TLS: results travel in clear; use --tls-cert/--tls-key\n", flightAddr)
	}
	describe := func(ctx context.Context) (fleet.Registration, error) {
		m := fleet.Probe(shmDir)
		return fleet.Registration{Name: ws.name, Instance: wd.Instance, Version: Version, Addr: advertise,
			Cores: m.Cores, MemoryBytes: m.MemoryBytes, ShmFreeBytes: functions.shmFree(m.ShmFreeBytes), Launcher: host.Launcher,
			Environments: e.cachedEnvironments(), Warehouse: queries.root}, nil
	}
	metrics := flight.NewMetrics()
	// The data plane: no catalog, no keys; it serves the tickets it holds
	// to whoever presents one.
	srv := flight.NewServer(flight.Options{Version: Version, Role: roleWorker, Log: e.Log, Metrics: metrics, TLS: tls, Placed: queries,
		Intermediates: functions.intermediates,
		// Its data dir and launcher; it has no catalog, and reads the
		// warehouse of its --warehouse (the control plane's) for the
		// queries placed on it.
		Host: func(ctx context.Context, b flight.ServerInfoBody) (flight.HostInfo, error) {
			h, err := e.hostInfo(ctx, b)
			h.Catalog, h.Warehouse = "", queries.root
			return h, err
		}})

	ctx, cancel := context.WithCancelCause(c.Context)
	// The tasks running when the worker stops end (their functions
	// stopped) before its launcher and package cache close.
	var working sync.WaitGroup
	defer working.Wait()
	defer cancel(nil)
	var ready atomic.Bool
	started := func() {
		fmt.Fprintf(e.Stdout, "lakehouse serve: flight on %s://%s, http on http://%s, data dir %s\n",
			scheme(tls), flis.Addr(), hlis.Addr(), e.DataDir)
		go func() { cancel(e.member(ctx, ws, control, describe, shmDir, queries, functions, &ready)) }()
		working.Add(1)
		go func() {
			defer working.Done()
			functions.work.Run(ctx)
		}()
	}
	err = e.serveUntilStopped(ctx, srv, flis, hlis, httpHandler(metrics, &ready, nil), &ready,
		// The DuckDBs opened ahead of placed queries go with the server.
		c.Duration("shutdown-timeout"), started, func() { query.ClosePool() })
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// member joins the fleet and heartbeats until ctx ends; it returns why it
// stopped (nil: ctx ended).
func (e *Env) member(ctx context.Context, ws workerSetup, control *flight.Client,
	describe func(context.Context) (fleet.Registration, error), shmDir string, queries *workerQueries, functions *workerFunctions, ready *atomic.Bool) error {
	m, err := fleet.Join(ctx, fleet.MemberConfig{
		Control:  control,
		Describe: describe,
		Interval: ws.interval,
		Log:      e.Log,
		Load: func() fleet.Load {
			p := fleet.Probe(shmDir)
			avail := p.MemoryAvailableBytes + functions.relieve(p)
			return fleet.Load{Running: queries.load() + functions.running(), ShmFreeBytes: functions.shmFree(p.ShmFreeBytes), MemoryAvailableBytes: avail}
		},
		OnRegister: func(l fleet.Lease, again bool) {
			if again {
				fmt.Fprintf(e.Stderr, "worker %s registered again with %s: epoch %d\n", ws.name, control.Addr(), l.Epoch)
				return
			}
			fmt.Fprintf(e.Stdout, "worker %s joined %s: epoch %d, heartbeat every %s, timeout %s\n",
				ws.name, control.Addr(), l.Epoch, ws.interval, l.Timeout())
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("worker %s cannot join %s: %w", ws.name, control.Addr(), err)
	}
	queries.member.Store(m)
	ready.Store(true)
	if err := m.Run(ctx); err != nil {
		return fmt.Errorf("worker %s left %s: %w", ws.name, control.Addr(), err)
	}
	return nil
}

// advertiseAddr is the data plane address a worker registers: --advertise-addr,
// else the listener's address, with the host name for an unspecified host
// (0.0.0.0).
func advertiseAddr(flag string, lis net.Addr) (string, error) {
	if flag != "" {
		host, port, err := net.SplitHostPort(flag)
		if _, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil {
			return "", errdefs.WithHint(errdefs.ErrInvalidArgument, "use host:port", "invalid --advertise-addr %q", flag)
		}
		return flag, nil
	}
	tcp, ok := lis.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return lis.String(), nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", errdefs.WithHint(errdefs.ErrInvalidArgument, "give --advertise-addr host:port",
			"the worker listens on %s and cannot read its host name: %v", lis, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port)), nil
}

// cachedEnvironments lists the keys of the package resolutions of the
// worker's package cache (none if it cannot be read).
func (e *Env) cachedEnvironments() []string {
	cache, err := e.envCache(nil)
	if err != nil {
		return []string{}
	}
	defer cache.Close()
	rs, err := cache.Resolutions()
	if err != nil {
		return []string{}
	}
	keys := make([]string, 0, len(rs))
	for _, r := range rs {
		keys = append(keys, r.Key)
	}
	return keys
}
