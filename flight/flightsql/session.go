package flightsql

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	fsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	pb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// The call headers that choose where statements run, for clients that
// set no session options (any Flight SQL client can add a header: ADBC's
// adbc.flight.sql.rpc.call_header.lakehouse-ref, the Go driver's DSN
// parameter lakehouse-ref=...).
const (
	HeaderRef       = "lakehouse-ref"
	HeaderNamespace = "lakehouse-namespace"
)

// The session options a client may set (ADBC's current catalog and db
// schema set "catalog" and "schema").
const (
	OptionCatalog = "catalog"
	OptionSchema  = "schema"
)

// SessionCookie names the cookie that carries a session's id.
const SessionCookie = "lakehouse_flightsql_session"

// session is what a connection chose with SetSessionOptions ("" for
// unset).
type session struct {
	catalog, schema string
	used            time.Time
}

// The session lives on the server and the cookie carries only its id, so
// the cookie is set once per connection. Clients pick up cookies
// reliably only from unary calls (arrow-go's middleware may miss those
// of a streaming call, such as the action SetSessionOptions is), so the
// session starts at the first GetSqlInfo — which ADBC sends when it
// connects — or else at the first SetSessionOptions.

// sessionOf returns the session of the call's cookie (nil if none, or
// unknown). s.mu is held.
func (s *Server) sessionOf(ctx context.Context) *session {
	md, _ := metadata.FromIncomingContext(ctx)
	h := http.Header{"Cookie": md.Get("cookie")}
	c, err := (&http.Request{Header: h}).Cookie(SessionCookie)
	if err != nil {
		return nil
	}
	sess := s.sessions[c.Value]
	if sess != nil {
		sess.used = time.Now()
	}
	return sess
}

// ensureSession returns the call's session, starting one (and setting
// its cookie on the call) if the call has none.
func (s *Server) ensureSession(ctx context.Context) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessionOf(ctx); sess != nil {
		return sess, nil
	}
	id := newHandle()
	c := http.Cookie{Name: SessionCookie, Value: id}
	if err := grpc.SetHeader(ctx, metadata.Pairs("Set-Cookie", c.String())); err != nil {
		return nil, err
	}
	sess := &session{used: time.Now()}
	s.sessions[id] = sess
	return sess, nil
}

// GetFlightInfoSqlInfo answers GetSqlInfo, and starts the connection's
// session (see session).
func (s *Server) GetFlightInfoSqlInfo(ctx context.Context, cmd fsql.GetSqlInfo, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	if _, err := s.ensureSession(ctx); err != nil {
		return nil, status(err)
	}
	return s.BaseServer.GetFlightInfoSqlInfo(ctx, cmd, desc)
}

// target is where the statements of the call run: the ref and namespace
// of the session options, else of the call headers, else main and the
// default namespace.
func (s *Server) target(ctx context.Context) (flight.QueryCommand, error) {
	var q flight.QueryCommand
	s.mu.Lock()
	if sess := s.sessionOf(ctx); sess != nil {
		q.Ref, q.Namespace = sess.catalog, sess.schema
	}
	s.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(HeaderRef); q.Ref == "" && len(v) > 0 {
		q.Ref = strings.TrimSpace(v[0])
	}
	if v := md.Get(HeaderNamespace); q.Namespace == "" && len(v) > 0 {
		q.Namespace = strings.TrimSpace(v[0])
	}
	if q.Ref == "" {
		q.Ref = string(catalog.MainBranch)
	}
	if _, err := catalog.ParseRef(q.Ref); err != nil {
		return q, err
	}
	if q.Namespace != "" {
		if _, err := catalog.ParseNamespace(q.Namespace); err != nil {
			return q, err
		}
	}
	return q, nil
}

// SetSessionOptions sets the catalog (a ref) and schema (a namespace)
// statements of the session run at. Both are checked against the catalog
// now: a ref or namespace that does not exist fails the call; an unknown
// option or a value that is not a string is reported per option, as the
// protocol asks. Either leaves the session as it was.
func (s *Server) SetSessionOptions(ctx context.Context, req *arrowflight.SetSessionOptionsRequest) (*arrowflight.SetSessionOptionsResult, error) {
	if err := allowRead(ctx); err != nil {
		return nil, status(err)
	}
	sess, err := s.ensureSession(ctx)
	if err != nil {
		return nil, status(err)
	}
	s.mu.Lock()
	next := *sess
	s.mu.Unlock()
	res := &arrowflight.SetSessionOptionsResult{Errors: map[string]*arrowflight.SetSessionOptionsResultError{}}
	fail := func(name string, v pb.SetSessionOptionsResult_ErrorValue) {
		res.Errors[name] = &arrowflight.SetSessionOptionsResultError{Value: v}
	}
	// The catalog first: a schema is checked at the catalog set with it.
	names := make([]string, 0, len(req.GetSessionOptions()))
	for name := range req.GetSessionOptions() {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(normalOption(a), normalOption(b)) })
	for _, name := range names {
		v := req.GetSessionOptions()[name]
		field := next.field(normalOption(name))
		if field == nil {
			fail(name, arrowflight.SetSessionOptionsResultErrorInvalidName)
			continue
		}
		if v.GetOptionValue() == nil { // unset
			*field = ""
			continue
		}
		str, ok := v.GetOptionValue().(*pb.SessionOptionValue_StringValue)
		if !ok {
			fail(name, arrowflight.SetSessionOptionsResultErrorInvalidValue)
			continue
		}
		// A ref or namespace that does not exist fails the call, with
		// the catalog's message and hint.
		if err := s.checkOption(ctx, normalOption(name), str.StringValue, next.catalog); err != nil {
			return nil, status(fmt.Errorf("session option %s: %w", normalOption(name), err))
		}
		*field = str.StringValue
	}
	if len(res.Errors) == 0 {
		s.mu.Lock()
		sess.catalog, sess.schema = next.catalog, next.schema
		s.mu.Unlock()
	}
	return res, nil
}

// field is the option of s named name (nil: no such option).
func (s *session) field(name string) *string {
	switch name {
	case OptionCatalog:
		return &s.catalog
	case OptionSchema:
		return &s.schema
	}
	return nil
}

// normalOption maps the other names clients use to the option's.
func normalOption(name string) string {
	switch name {
	case "db_schema", "adbc.connection.db_schema":
		return OptionSchema
	case "adbc.connection.catalog":
		return OptionCatalog
	}
	return name
}

// checkOption checks a catalog or schema: the ref exists, the namespace
// exists at the session's ref (refName, "" for main).
func (s *Server) checkOption(ctx context.Context, name, v, refName string) error {
	if name == OptionCatalog {
		ref, err := catalog.ParseRef(v)
		if err != nil {
			return err
		}
		_, err = s.opts.Catalog.Resolve(ctx, ref)
		return err
	}
	ns, err := catalog.ParseNamespace(v)
	if err != nil {
		return err
	}
	if refName == "" {
		refName = string(catalog.MainBranch)
	}
	ref, err := catalog.ParseRef(refName)
	if err != nil {
		return err
	}
	nss, err := s.opts.Catalog.ListNamespaces(ctx, ref)
	if err != nil {
		return err
	}
	if !slices.Contains(nss, ns) {
		return errdefs.WithHint(errdefs.ErrNotFound, "list them with `lakehouse namespace ls -r "+refName+"`",
			"namespace %s does not exist at %s", ns, refName)
	}
	return nil
}

// GetSessionOptions returns where the call's statements run: the
// catalog is main and the schema the default namespace until set.
func (s *Server) GetSessionOptions(ctx context.Context, req *arrowflight.GetSessionOptionsRequest) (*arrowflight.GetSessionOptionsResult, error) {
	q, err := s.target(ctx)
	if err != nil {
		return nil, status(err)
	}
	ns := q.Namespace
	if ns == "" {
		ns = string(catalog.DefaultNamespace)
	}
	str := func(v string) *arrowflight.SessionOptionValue {
		return &arrowflight.SessionOptionValue{OptionValue: &pb.SessionOptionValue_StringValue{StringValue: v}}
	}
	return &arrowflight.GetSessionOptionsResult{SessionOptions: map[string]*arrowflight.SessionOptionValue{
		OptionCatalog: str(q.Ref),
		OptionSchema:  str(ns),
	}}, nil
}

// CloseSession forgets the call's session.
func (s *Server) CloseSession(ctx context.Context, req *arrowflight.CloseSessionRequest) (*arrowflight.CloseSessionResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.sessionOf(ctx); cur != nil {
		for id, sess := range s.sessions {
			if sess == cur {
				delete(s.sessions, id)
			}
		}
	}
	return &arrowflight.CloseSessionResult{Status: arrowflight.CloseSessionResultClosed}, nil
}
