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
			"(up to --shutdown-timeout) and marks runs that cannot finish as interrupted.",
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "role", Value: "all", Usage: "all: catalog, queries and runs in this process"},
			&urfave.StringFlag{Name: "flight-addr", Value: defaultFlightAddr, Usage: "address of the Arrow Flight (gRPC) listener"},
			&urfave.StringFlag{Name: "http-addr", Value: defaultHTTPAddr, Usage: "address of the HTTP listener (/healthz, /readyz, /metrics)"},
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
		},
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
}

// serverSetup is the list of functions that add to a server being set up
// (runs and keys register themselves here).
var serverSetup []func(e *Env, ctx context.Context, h *serverHooks) error

func (e *Env) serve(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	if e.Addr != "" {
		return usageError(c, "serve runs a server over the data dir; drop --addr (and %s)", envAddr)
	}
	if role := c.String("role"); role != "all" {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "use --role all (the only role this build serves)",
			"invalid --role %q", role)
	}
	certFile, keyFile := c.String("tls-cert"), c.String("tls-key")
	if (certFile == "") != (keyFile == "") {
		return usageError(c, "give --tls-cert and --tls-key together")
	}
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
		Role:    "all",
		Host:    e.hostInfo,
		Log:     e.Log,
		Metrics: metrics,
		// Files clients send for `table import`, until it reads them.
		UploadDir:      filepath.Join(e.DataDir, "uploads"),
		MaxUploadBytes: limits.uploadBytes,
		UploadTTL:      limits.uploadTTL,
	}
	if certFile != "" {
		creds, err := credentials.NewServerTLSFromFile(certFile, keyFile)
		if err != nil {
			return errdefs.WithHint(errdefs.ErrInvalidArgument, "give a PEM certificate and its private key",
				"cannot load the TLS certificate: %v", err)
		}
		opts.TLS = creds
	}
	hooks := &serverHooks{opts: &opts, project: limits.project, shutdownTimeout: c.Duration("shutdown-timeout")}
	for _, setup := range serverSetup {
		if err := setup(e, ctx, hooks); err != nil {
			return err
		}
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

	flis, err := net.Listen("tcp", c.String("flight-addr"))
	if err != nil {
		return errdefs.WithHint(errdefs.ErrUnavailable, "stop what uses it or give --flight-addr",
			"cannot listen on %s: %v", c.String("flight-addr"), err)
	}
	hlis, err := net.Listen("tcp", c.String("http-addr"))
	if err != nil {
		flis.Close()
		return errdefs.WithHint(errdefs.ErrUnavailable, "stop what uses it or give --http-addr",
			"cannot listen on %s: %v", c.String("http-addr"), err)
	}
	srv := flight.NewServer(opts)
	var ready atomic.Bool
	hsrv := &http.Server{Handler: httpHandler(metrics, &ready), ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(flis) }()
	go func() {
		if err := hsrv.Serve(hlis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	ready.Store(true)
	scheme := "grpc"
	if opts.TLS != nil {
		scheme = "grpc+tls"
	}
	fmt.Fprintf(e.Stdout, "lakehouse serve: flight on %s://%s, http on http://%s, data dir %s\n",
		scheme, flis.Addr(), hlis.Addr(), e.DataDir)
	if opts.Auth == nil {
		fmt.Fprintln(e.Stdout, "no API keys: every caller on this machine is an admin")
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	ready.Store(false)
	fmt.Fprintln(e.Stderr, "stopping: no new calls; waiting for running queries")
	sctx, cancel := context.WithTimeout(context.Background(), c.Duration("shutdown-timeout"))
	defer cancel()
	srv.GracefulStop(c.Duration("shutdown-timeout"))
	hsrv.Shutdown(sctx)
	for _, f := range hooks.onStop {
		f()
	}
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

// httpHandler serves /healthz, /readyz and /metrics.
func httpHandler(m *flight.Metrics, ready *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
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
	plan, err := query.Plan(ctx, q.svc, q.scans, req)
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
