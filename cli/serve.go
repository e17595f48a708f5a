package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
	urfave "github.com/urfave/cli/v2"
	"google.golang.org/grpc/credentials"
)

// Defaults of the server's listeners: loopback only.
const (
	defaultFlightAddr = "127.0.0.1:8815"
	defaultHTTPAddr   = "127.0.0.1:8181"
)

func (e *Env) serveCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "serve",
		Usage: "run the lakehouse server over the data dir: Arrow Flight for clients, HTTP for health and metrics",
		Description: "Serves the catalog, queries and runs of the data dir to `lakehouse --addr HOST:PORT ...`\n" +
			"and to Python's lakehouse.Client. The server holds the catalog file alone while it runs.\n" +
			"SIGTERM or Ctrl-C stops it: it stops accepting calls, lets running queries finish\n" +
			"(up to --shutdown-timeout) and marks runs that cannot finish as interrupted.\n" +
			"--role control serves the same, and keeps the fleet: `lakehouse serve --role worker --join HOST:PORT`\n" +
			"(with a key of role worker) joins it, and `lakehouse workers ls` lists it.",
		Flags: append([]urfave.Flag{
			&urfave.StringFlag{Name: "role", Value: roleAll, Usage: "all: catalog, queries and runs in this process; " +
				"control: the same, and workers join it; worker: joins a control plane (--join) and runs what it is given"},
			&urfave.StringFlag{Name: "flight-addr", Value: defaultFlightAddr, Usage: "address of the Arrow Flight (gRPC) listener " +
				"(a worker's data plane: default " + defaultWorkerFlightAddr + ")"},
			&urfave.StringFlag{Name: "http-addr", Value: defaultHTTPAddr, Usage: "address of the HTTP listener (/healthz, /readyz, /metrics; " +
				"a worker's default " + defaultWorkerHTTPAddr + ")"},
			&urfave.StringFlag{Name: "tls-cert", Usage: "serve TLS with this PEM certificate (with --tls-key)"},
			&urfave.StringFlag{Name: "tls-key", Usage: "PEM private key of --tls-cert"},
			&urfave.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "how long a stop waits for running queries"},
			&urfave.StringFlag{Name: "max-upload-bytes", Value: "16GiB",
				Usage: "most bytes of files clients send for table import the server stages at once (such as 16GiB or 512MiB)"},
			&urfave.DurationFlag{Name: "upload-ttl", Value: flight.DefaultUploadTTL,
				Usage: "how long a file sent for table import waits for its import before it is removed"},
			&urfave.StringFlag{Name: "max-project-bytes", Value: "64MiB",
				Usage: "largest project folder a run may send, gzip'd (at most " + sizeText(flight.MaxProjectBytesCeiling) + ")"},
			&urfave.StringFlag{Name: "max-project-unpacked", Value: "256MiB",
				Usage: "most bytes of files a project sent with a run may unpack to (at most " + sizeText(flight.MaxProjectUnpackedCeiling) + ")"},
		}, fleetFlags()...),
		Action: e.serve,
	}
}

// serverHooks lets the parts of the server built elsewhere (runs, keys)
// add to it before it starts and stop with it.
type serverHooks struct {
	opts *flight.Options
	// project bounds the projects clients send with runs.
	project projectLimits
	// onStop run after the listeners closed, before the catalog closes.
	onStop []func()
	// shutdownTimeout is how long a stop waits for running calls.
	shutdownTimeout time.Duration
	// routes are more handlers of the HTTP listener, by ServeMux pattern
	// (such as "/iceberg/"), beside /healthz, /readyz and /metrics.
	routes map[string]http.Handler
	// runsIdle, once the server stops, is closed when no run is under way
	// (nil: the server runs none).
	runsIdle func() <-chan struct{}
}

// serverSetup is the list of functions that add to a server being set up
// (runs and keys register themselves here).
// setupKeys comes first, whatever the order of the files' init functions:
// the parts after it (the REST catalog, Flight SQL) check the keys it sets.
var serverSetup = []func(e *Env, ctx context.Context, h *serverHooks) error{setupKeys}

func (e *Env) serve(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	if e.Addr != "" {
		return usageError(c, "serve runs a server over the data dir; drop --addr (and %s)", envAddr)
	}
	role := c.String("role")
	if err := checkRoleFlags(c, role); err != nil {
		return err
	}
	if (c.String("tls-cert") == "") != (c.String("tls-key") == "") {
		return usageError(c, "give --tls-cert and --tls-key together")
	}
	if role == roleWorker {
		return e.serveWorker(c)
	}
	return e.serveCatalog(c, role)
}

// serveCatalog serves the data dir's catalog, queries and runs: --role
// all, or control (which also keeps the fleet).
func (e *Env) serveCatalog(c *urfave.Context, role string) error {
	certFile, keyFile := c.String("tls-cert"), c.String("tls-key")
	limits, err := serveLimits(c)
	if err != nil {
		return err
	}
	e.exclusive = true
	ctx := c.Context
	svc, err := e.Service(ctx)
	if err != nil {
		return err
	}
	scans, err := e.tableScans(ctx)
	if err != nil {
		return err
	}
	metrics := flight.NewMetrics()
	opts := flight.Options{
		Catalog: svc,
		Queries: &localQueries{svc: svc, scans: scans},
		Version: Version,
		Role:    role,
		Host:    e.hostInfo,
		Log:     e.Log,
		Metrics: metrics,
		// Files clients send for `table import`, until it reads them.
		UploadDir:      filepath.Join(e.DataDir, "uploads"),
		MaxUploadBytes: limits.uploadBytes,
		UploadTTL:      limits.uploadTTL,
	}
	if opts.TLS, err = serverTLS(certFile, keyFile); err != nil {
		return err
	}
	stopFleet := func() {}
	if role == roleControl {
		if err := e.setupFleet(ctx, c, &opts, &stopFleet); err != nil {
			return err
		}
	}
	hooks := &serverHooks{opts: &opts, project: limits.project, shutdownTimeout: c.Duration("shutdown-timeout")}
	// Runs stop (with the other hooks) before the fleet's launcher does.
	defer stopFleet()
	for _, setup := range serverSetup {
		if err := setup(e, ctx, hooks); err != nil {
			return err
		}
	}
	if role == roleControl && hooks.runsIdle != nil {
		// The workers' work streams are calls a graceful stop would
		// wait for: they end once the runs that use them have.
		go func() {
			<-ctx.Done()
			<-hooks.runsIdle()
			stopFleet()
		}()
	}
	for _, a := range []string{c.String("flight-addr"), c.String("http-addr")} {
		if !isLoopback(a) && opts.Auth == nil {
			return errdefs.WithHint(errdefs.ErrFailedPrecondition,
				"create the first admin key with `lakehouse auth init`, or listen on 127.0.0.1",
				"the server would listen on %s, beyond this machine, without API keys", a)
		}
		if !isLoopback(a) && opts.TLS == nil {
			fmt.Fprintf(e.Stderr, "warning: %s is reachable beyond this machine without TLS: keys and data travel in clear; use --tls-cert/--tls-key\n", a)
		}
	}

	flis, hlis, err := listen(c.String("flight-addr"), c.String("http-addr"))
	if err != nil {
		return err
	}
	srv := flight.NewServer(opts)
	var ready atomic.Bool
	banner := func() {
		fmt.Fprintf(e.Stdout, "lakehouse serve: flight on %s://%s, http on http://%s, data dir %s\n",
			scheme(opts.TLS), flis.Addr(), hlis.Addr(), e.DataDir)
		if opts.Auth == nil {
			fmt.Fprintln(e.Stdout, "no API keys: every caller on this machine is an admin")
		}
		if role == roleControl {
			fmt.Fprintf(e.Stdout, "control plane: workers join with `lakehouse serve --role worker --join %s`\n", flis.Addr())
		}
		ready.Store(true)
	}
	return e.serveUntilStopped(ctx, srv, flis, hlis, httpHandler(metrics, &ready, hooks.routes), &ready,
		hooks.shutdownTimeout, banner, func() {
			for _, f := range hooks.onStop {
				f()
			}
			// The DuckDBs opened ahead of queries go with the server.
			query.ClosePool()
		})
}

// serverTLS loads the certificate of --tls-cert and --tls-key (nil
// without them).
func serverTLS(certFile, keyFile string) (credentials.TransportCredentials, error) {
	if certFile == "" {
		return nil, nil
	}
	creds, err := credentials.NewServerTLSFromFile(certFile, keyFile)
	if err != nil {
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, "give a PEM certificate and its private key",
			"cannot load the TLS certificate: %v", err)
	}
	return creds, nil
}

// scheme is the URL scheme of a Flight listener.
func scheme(tls credentials.TransportCredentials) string {
	if tls != nil {
		return "grpc+tls"
	}
	return "grpc"
}

// listen opens the Flight and HTTP listeners.
func listen(flightAddr, httpAddr string) (flis, hlis net.Listener, err error) {
	flis, err = net.Listen("tcp", flightAddr)
	if err != nil {
		return nil, nil, errdefs.WithHint(errdefs.ErrUnavailable, "stop what uses it or give --flight-addr",
			"cannot listen on %s: %v", flightAddr, err)
	}
	hlis, err = net.Listen("tcp", httpAddr)
	if err != nil {
		flis.Close()
		return nil, nil, errdefs.WithHint(errdefs.ErrUnavailable, "stop what uses it or give --http-addr",
			"cannot listen on %s: %v", httpAddr, err)
	}
	return flis, hlis, nil
}

// serveUntilStopped serves srv on flis and h on hlis, calls started once
// both accept, and runs until ctx ends or a listener fails; then it stops
// accepting calls, waits up to timeout for running ones, and calls
// stopped.
func (e *Env) serveUntilStopped(ctx context.Context, srv *flight.Server, flis, hlis net.Listener, h http.Handler,
	ready *atomic.Bool, timeout time.Duration, started, stopped func()) error {
	hsrv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(flis) }()
	go func() {
		if err := hsrv.Serve(hlis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	started()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	ready.Store(false)
	fmt.Fprintln(e.Stderr, "stopping: no new calls; waiting for running queries")
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	srv.GracefulStop(timeout)
	hsrv.Shutdown(sctx)
	stopped()
	fmt.Fprintln(e.Stderr, "stopped")
	return serveErr
}

// serverLimits are the bounds serve's flags set.
type serverLimits struct {
	uploadBytes int64
	uploadTTL   time.Duration
	project     projectLimits
}

// serveLimits reads and checks the limit flags of serve.
func serveLimits(c *urfave.Context) (serverLimits, error) {
	var l serverLimits
	size := func(name string, ceiling int64) (int64, error) {
		v := c.String(name)
		n, err := duckdb.ParseSize(v)
		if err != nil {
			return 0, usageError(c, "invalid --%s %q: %v", name, v, err)
		}
		if n < 1<<20 || ceiling > 0 && n > ceiling {
			bound := "of at least 1MiB"
			if ceiling > 0 {
				bound = "from 1MiB to " + sizeText(ceiling)
			}
			return 0, usageError(c, "invalid --%s %q: use a size %s", name, v, bound)
		}
		return n, nil
	}
	var err error
	if l.uploadBytes, err = size("max-upload-bytes", 0); err != nil {
		return l, err
	}
	if l.project.bytes, err = size("max-project-bytes", flight.MaxProjectBytesCeiling); err != nil {
		return l, err
	}
	if l.project.unpacked, err = size("max-project-unpacked", flight.MaxProjectUnpackedCeiling); err != nil {
		return l, err
	}
	if l.uploadTTL = c.Duration("upload-ttl"); l.uploadTTL < time.Second {
		return l, usageError(c, "invalid --upload-ttl %s: use a duration of at least 1s, such as 1h", l.uploadTTL)
	}
	return l, nil
}

// sizeText writes a whole number of MiB as a size flag takes it: 190MiB,
// 4GiB.
func sizeText(n int64) string {
	if n%(1<<30) == 0 {
		return fmt.Sprintf("%dGiB", n>>30)
	}
	return fmt.Sprintf("%dMiB", n>>20)
}

// isLoopback reports whether a listen address stays on this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpHandler serves /healthz, /readyz, /metrics and the routes parts of
// the server added.
func httpHandler(m *flight.Metrics, ready *atomic.Bool, routes map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.WriteText(w)
	})
	return mux
}

// localQueries runs the server's queries in this process, as `lakehouse
// query` does in embedded mode.
type localQueries struct {
	svc   catalog.Service
	scans catalog.TableScanner
}

func (q *localQueries) request(c flight.QueryCommand) (query.Request, error) {
	req := query.Request{SQL: c.SQL}
	if c.Ref != "" {
		ref, err := catalog.ParseRef(c.Ref)
		if err != nil {
			return req, err
		}
		req.Ref = ref
	} else {
		req.Ref = catalog.Ref{Name: string(catalog.MainBranch)}
	}
	req.Namespace = catalog.DefaultNamespace
	if c.Namespace != "" {
		ns, err := catalog.ParseNamespace(c.Namespace)
		if err != nil {
			return req, err
		}
		req.Namespace = ns
	}
	return req, nil
}

func (q *localQueries) Run(ctx context.Context, c flight.QueryCommand) (array.RecordReader, func() error, error) {
	req, err := q.request(c)
	if err != nil {
		return nil, nil, err
	}
	res, err := query.Run(ctx, q.svc, q.scans, req)
	if err != nil {
		return nil, nil, err
	}
	return res.Reader, res.Close, nil
}

func (q *localQueries) Explain(ctx context.Context, c flight.QueryCommand) (*flight.ExplainResult, error) {
	req, err := q.request(c)
	if err != nil {
		return nil, err
	}
	plan, err := query.Plan(iceberg.PlanOnly(ctx), q.svc, q.scans, req)
	if err != nil {
		return nil, err
	}
	var text strings.Builder
	if err := plansql.Explain(&text, plan); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(viewPlan(plan)); err != nil {
		return nil, err
	}
	return &flight.ExplainResult{Text: text.String(), Plan: bytes.TrimSpace(b.Bytes())}, nil
}
