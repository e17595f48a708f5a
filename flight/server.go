package flight

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// MaxMessageSize is the largest gRPC message either side accepts (gRPC's
// default is 4 MiB): a project folder sent with a run, a large action
// result, a big record batch.
const MaxMessageSize = 256 << 20

// Queries runs the queries of the server's clients.
type Queries interface {
	// Run starts a query. Read the reader to its end or stop early; call
	// close in every case.
	Run(ctx context.Context, q QueryCommand) (r array.RecordReader, close func() error, err error)
	// Explain plans a query without running it.
	Explain(ctx context.Context, q QueryCommand) (*ExplainResult, error)
}

// Options configure a Server.
type Options struct {
	// Catalog is the one catalog of the server; Close is not called (nil:
	// a worker's data plane, which serves no catalog or import actions).
	Catalog catalog.Service
	// Queries answers GetFlightInfo and DoGet.
	Queries Queries
	// Runs runs pipelines for the run actions (nil: the server runs none).
	Runs Runs
	// Keys manages API keys for the key actions (nil: none).
	Keys Keys
	// Fleet is the registry of a control plane's workers (nil: the server
	// is not a control plane).
	Fleet Fleet
	// Work is the control plane's side of the work streams its workers
	// open with DoExchange (nil: the server takes none). See work.go.
	Work *WorkHub
	// GC collects the warehouse's garbage for ActionGC (nil: none).
	GC GarbageCollector
	// Place places the queries of clients that follow locations on
	// workers (nil: every query runs here); Placed runs those placed on a
	// worker (nil: not a worker). See server_place.go.
	Place  Placer
	Placed PlacedQueries
	// Intermediates are the outputs a worker hands over (handoff.go).
	Intermediates *Intermediates
	// UploadDir holds the files clients send with DoPut until an import
	// reads them.
	UploadDir string
	// MaxUploadBytes bounds the files staged in UploadDir at once
	// (default DefaultMaxUploadBytes); UploadTTL is how long an upload
	// waits for its import before it is removed (default DefaultUploadTTL).
	MaxUploadBytes int64
	UploadTTL      time.Duration
	// Auth checks API keys; nil serves without keys (loopback only): every
	// caller is an admin, and commits keep the author the client names.
	Auth Authenticator
	// Version and Role are what ActionServerInfo reports.
	Version, Role string
	// Host describes the server's host for ActionServerInfo, given the
	// body's launcher and isolation; a bad one is
	// errdefs.ErrInvalidArgument (nil: the host is not described).
	Host func(ctx context.Context, b ServerInfoBody) (HostInfo, error)
	// Log receives one line per failed request (nil: discarded).
	Log *slog.Logger
	// Metrics counts requests and errors (nil: none).
	Metrics *Metrics
	// TLS serves TLS when set.
	TLS credentials.TransportCredentials
	// QueryTTL is how long a query started by GetFlightInfo waits for its
	// DoGet before it is dropped. Default 5 minutes.
	QueryTTL time.Duration
	// SQL answers the Flight SQL calls on the same listener (nil: none):
	// commands and tickets that are Flight SQL protobuf messages and the
	// Flight SQL action types go to it, behind the same API keys (see
	// server_sql.go).
	SQL flight.FlightServer
}

// handler answers one action type: it reads body and sends results.
type handler struct {
	fn func(ctx context.Context, body []byte, send func(any) error) error
	// doc is the action's description in ListActions.
	doc string
}

// Server is the Arrow Flight service of `lakehouse serve`.
type Server struct {
	flight.BaseFlightServer
	opts    Options
	actions map[string]handler
	grpc    *grpc.Server

	mu      sync.Mutex
	pending map[string]*pendingQuery
	uploads *uploads
	http    []*http.Server // Serve's, for the intermediates of a data plane
	closing bool
	active  sync.WaitGroup
	stop    chan struct{}
}

type pendingQuery struct {
	reader array.RecordReader
	close  func() error
	// cancel interrupts the query (nil: it runs on the DoGet's context).
	cancel  context.CancelFunc
	user    string
	expires time.Time
}

// NewServer builds a server over opts. Call Serve to accept connections.
func NewServer(opts Options) *Server {
	if opts.QueryTTL <= 0 {
		opts.QueryTTL = 5 * time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, actions: map[string]handler{}, pending: map[string]*pendingQuery{}, stop: make(chan struct{})}
	// A worker's data plane has no catalog: it serves tickets only.
	if opts.Catalog != nil {
		s.registerCatalog()
		s.registerImport()
	} else {
		s.uploads = &uploads{files: map[string]*upload{}} // takes none
	}
	s.registerServerInfo()
	s.registerQuery()
	s.registerRuns()
	s.registerKeys()
	s.registerFleet()
	s.registerGC()
	gopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
		// Query results leave in messages of several MiB: a 1 MiB write
		// buffer writes each in a few syscalls rather than hundreds of
		// 32 KiB ones (grpc's default).
		grpc.WriteBufferSize(1 << 20),
		// Imports arrive in large messages too: windows of 16 MiB per
		// stream and 64 MiB per connection (grpc's defaults start at
		// 64 KiB) let a client keep sending while the server commits.
		grpc.InitialWindowSize(16 << 20),
		grpc.InitialConnWindowSize(64 << 20),
		// Protobuf, except that DoGet's record batches are encoded
		// without copying their buffers (codec.go).
		grpc.ForceServerCodecV2(newCodec()),
		grpc.ChainUnaryInterceptor(s.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.streamInterceptor),
	}
	if opts.TLS != nil {
		gopts = append(gopts, grpc.Creds(opts.TLS))
	}
	s.grpc = grpc.NewServer(gopts...)
	flight.RegisterFlightServiceServer(s.grpc, s.service())
	go s.sweep()
	return s
}

// register adds an action type.
func (s *Server) register(typ, doc string, fn func(ctx context.Context, body []byte, send func(any) error) error) {
	if _, dup := s.actions[typ]; dup {
		panic("flight: action registered twice: " + typ)
	}
	s.actions[typ] = handler{fn: fn, doc: doc}
}

// Serve accepts connections on lis until Stop or GracefulStop. A
// worker's data plane without TLS answers HTTP/1.1 on lis too, for its
// intermediates (handoff_http.go).
func (s *Server) Serve(lis net.Listener) error {
	if !s.servesHTTP() {
		return s.grpc.Serve(lis)
	}
	s.mu.Lock()
	select {
	case <-s.stop: // stopped before it served
		s.mu.Unlock()
		lis.Close()
		return grpc.ErrServerStopped
	default:
	}
	grpcL, httpL := splitListener(lis)
	hs := &http.Server{Handler: http.HandlerFunc(s.serveIntermediateHTTP), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	s.http = append(s.http, hs) // Stop closes it
	s.mu.Unlock()
	go hs.Serve(httpL) //nolint:errcheck // ends with Stop
	return s.grpc.Serve(grpcL)
}

// httpServers are the HTTP servers of Serve's data planes.
func (s *Server) httpServers() []*http.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.http
}

// GracefulStop stops accepting new calls and waits up to timeout for the
// running ones (queries streaming, runs reporting) before cutting them.
func (s *Server) GracefulStop(timeout time.Duration) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	// The intermediates being sent over HTTP likewise.
	hctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	hdone := make(chan struct{})
	go func() {
		for _, hs := range s.httpServers() {
			hs.Shutdown(hctx) //nolint:errcheck // cut by Stop below
		}
		close(hdone)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		s.grpc.Stop()
		<-done
	}
	<-hdone
	s.Stop()
}

// Stop cuts every call and releases pending queries.
func (s *Server) Stop() {
	s.grpc.Stop()
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	for id, q := range s.pending {
		q.close()
		delete(s.pending, id)
	}
	hss := s.http
	s.mu.Unlock()
	for _, hs := range hss {
		hs.Close()
	}
}

// sweep drops queries whose DoGet never came.
func (s *Server) sweep() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			for id, q := range s.pending {
				if now.After(q.expires) {
					q.close()
					delete(s.pending, id)
				}
			}
			s.mu.Unlock()
		}
	}
}

// ListActions lists the action types this server answers.
func (s *Server) ListActions(_ *flight.Empty, stream flight.FlightService_ListActionsServer) error {
	types := make([]string, 0, len(s.actions))
	for t := range s.actions {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if err := stream.Send(&flight.ActionType{Type: t, Description: s.actions[t].doc}); err != nil {
			return err
		}
	}
	return nil
}

// DoAction runs one action: a JSON body in, JSON results out.
func (s *Server) DoAction(a *flight.Action, stream flight.FlightService_DoActionServer) error {
	ctx := stream.Context()
	if err := workerGate(ctx, "/DoAction", a.GetType()); err != nil {
		return ToStatus(err)
	}
	h, ok := s.actions[a.GetType()]
	if !ok {
		return ToStatus(unknownAction(a.GetType(), s.actions))
	}
	s.opts.Metrics.request(a.GetType())
	start := time.Now()
	err := h.fn(ctx, a.GetBody(), func(v any) error {
		b, err := marshalResult(v)
		if err != nil {
			return err
		}
		return stream.Send(&flight.Result{Body: b})
	})
	s.opts.Metrics.done(a.GetType(), time.Since(start), err)
	if err != nil {
		s.opts.Log.Debug("action failed", "type", a.GetType(), "user", PrincipalFrom(ctx).User, "err", err)
	}
	return ToStatus(err)
}

// DoExchange serves the work stream of a worker (the only exchange).
func (s *Server) DoExchange(stream flight.FlightService_DoExchangeServer) error {
	if s.opts.Work == nil {
		return ToStatus(errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"workers take work from a server started with `lakehouse serve --role control`",
			"this server runs --role %s: it gives no work to workers", s.opts.Role))
	}
	ctx := stream.Context()
	if err := s.authorize(ctx, PermWork, nil); err != nil {
		return ToStatus(err)
	}
	const method = "WorkStream"
	s.opts.Metrics.request(method)
	start := time.Now()
	err := s.opts.Work.serve(ctx, stream)
	s.opts.Metrics.done(method, time.Since(start), err)
	return ToStatus(err)
}

// marshalResult encodes an action result. Like the CLI's -O json, it
// leaves <, > and & as they are: a client that prints a result it passes
// through prints what embedded mode prints.
func marshalResult(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func unknownAction(typ string, known map[string]handler) error {
	if !strings.HasPrefix(typ, "lakehouse.") {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "list them with ListActions",
			"unknown action type %q", typ)
	}
	if !strings.HasPrefix(typ, ActionPrefix) {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "use a client of the same version as the server",
			"action type %q is of a protocol version this server does not speak (it speaks %s*)", typ, ActionPrefix)
	}
	names := make([]string, 0, len(known))
	for t := range known {
		names = append(names, strings.TrimPrefix(t, ActionPrefix))
	}
	slices.Sort(names)
	return errdefs.WithHint(errdefs.ErrInvalidArgument, "the server knows: "+strings.Join(names, ", "),
		"unknown action type %q", typ)
}

// decode reads a JSON action body into v. An empty body is {}.
func decode(typ string, body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "send one JSON object as the body",
			"malformed body of %s: %v", strings.TrimPrefix(typ, ActionPrefix), err)
	}
	if dec.More() {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "send one JSON object as the body",
			"malformed body of %s: data after the JSON object", strings.TrimPrefix(typ, ActionPrefix))
	}
	return nil
}

// unary registers an action with one result: fn reads the decoded body.
func unary[B any](s *Server, typ, doc string, perm Permission, fn func(ctx context.Context, b B) (any, error)) {
	s.register(typ, doc, func(ctx context.Context, body []byte, send func(any) error) error {
		var b B
		if err := decode(typ, body, &b); err != nil {
			return err
		}
		if err := s.authorize(ctx, perm, b); err != nil {
			return err
		}
		out, err := fn(ctx, b)
		if err != nil {
			return err
		}
		if out == nil {
			out = struct{}{}
		}
		return send(out)
	})
}

// authorize checks that the caller may do perm; for branch writes, on the
// branch body names (see Scoped).
func (s *Server) authorize(ctx context.Context, perm Permission, body any) error {
	if s.opts.Auth == nil {
		return nil
	}
	p := PrincipalFrom(ctx)
	var scope []string
	if sc, ok := body.(Scoped); ok {
		scope = sc.Branches()
	}
	return p.Allow(perm, scope...)
}

// streamInterceptor authenticates every streaming call and refuses new
// calls while closing.
func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	ctx, err := s.enter(ss.Context())
	if err != nil {
		return ToStatus(err)
	}
	defer s.active.Done()
	if err := workerGate(ctx, info.FullMethod, ""); err != nil {
		return ToStatus(err)
	}
	defer s.survive(info.FullMethod, &err)
	return h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
}

func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (_ any, err error) {
	ctx, err = s.enter(ctx)
	if err != nil {
		return nil, ToStatus(err)
	}
	defer s.active.Done()
	if err := workerGate(ctx, info.FullMethod, ""); err != nil {
		return nil, ToStatus(err)
	}
	defer s.survive(info.FullMethod, &err)
	return h(ctx, req)
}

// survive turns a panic of a call's handler into the call's error
// (Internal), logged with its stack, instead of the end of the server and
// every other call: a request that reaches a bug is one failed request.
// Goroutines a handler starts recover on their own.
func (s *Server) survive(method string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	s.opts.Log.Error("a call panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	*err = ToStatus(errdefs.New(errdefs.ErrInternal, "%s failed on a bug of the server (it is logged): %v", method, r))
}

// enter authenticates a call and counts it as running.
func (s *Server) enter(ctx context.Context) (context.Context, error) {
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.active.Add(1)
	}
	s.mu.Unlock()
	if closing {
		return nil, errdefs.WithHint(errdefs.ErrUnavailable, "retry when it is back", "the server is shutting down")
	}
	p := Principal{User: "", Role: RoleAdmin}
	if s.opts.Auth != nil {
		var err error
		if p, err = s.opts.Auth.Authenticate(ctx, bearer(ctx)); err != nil {
			s.active.Done()
			s.opts.Metrics.unauthenticated()
			return nil, err
		}
	}
	return withPrincipal(ctx, p), nil
}

// bearer is the API key of the call's authorization header ("" if none).
func bearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if k, ok := strings.CutPrefix(v, "Bearer "); ok {
			return strings.TrimSpace(k)
		}
		if k, ok := strings.CutPrefix(v, "bearer "); ok {
			return strings.TrimSpace(k)
		}
	}
	return ""
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }

// author is the author of a commit a caller asks for: the key's user when
// the server checks keys, else what the client names.
func (s *Server) author(ctx context.Context, o CommitOptions) catalog.CommitOptions {
	co := o.catalog()
	if s.opts.Auth != nil {
		co.Author = PrincipalFrom(ctx).User
	}
	return co
}

func errorf(class error, format string, args ...any) error {
	return errdefs.New(class, format, args...)
}
