package flight

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/metadata"
)

// DialOptions configure a Client.
type DialOptions struct {
	// APIKey is sent as "Authorization: Bearer <key>" with every call.
	APIKey string
	// CAFile, for grpc+tls:// addresses, is a PEM file of the CA that
	// signed the server's certificate (default: the system's roots).
	CAFile string
	// Author is the author of commits on a server without keys.
	Author string
	// RetryDelay bounds the wait between attempts to reconnect to a
	// server that went away (default: gRPC's, up to 2 minutes): a worker
	// finds a restarted control plane within it.
	RetryDelay time.Duration
}

// Client talks to a `lakehouse serve` over Arrow Flight. It implements
// catalog.Service, so commands use it exactly like the embedded catalog.
type Client struct {
	addr string
	conn *grpc.ClientConn
	fc   flight.FlightServiceClient
	opts DialOptions
}

var _ catalog.Service = (*Client)(nil)

// ParseAddr splits a server address: host:port, grpc://host:port or
// grpc+tls://host:port.
func ParseAddr(addr string) (target string, useTLS bool, err error) {
	s := strings.TrimSpace(addr)
	switch {
	case strings.HasPrefix(s, "grpc+tls://"):
		s, useTLS = strings.TrimPrefix(s, "grpc+tls://"), true
	case strings.HasPrefix(s, "grpc+tcp://"):
		s = strings.TrimPrefix(s, "grpc+tcp://")
	case strings.HasPrefix(s, "grpc://"):
		s = strings.TrimPrefix(s, "grpc://")
	case strings.Contains(s, "://"):
		return "", false, errdefs.WithHint(errdefs.ErrInvalidArgument, "use host:port, grpc://host:port or grpc+tls://host:port",
			"invalid server address %q", addr)
	}
	if s == "" || strings.ContainsAny(s, "/ ") || !strings.Contains(s, ":") {
		return "", false, errdefs.WithHint(errdefs.ErrInvalidArgument, "use host:port, grpc://host:port or grpc+tls://host:port",
			"invalid server address %q", addr)
	}
	return s, useTLS, nil
}

// Dial returns a client of the server at addr. It does not connect yet:
// the first call does, and fails with errdefs.ErrUnavailable if the server
// cannot be reached.
func Dial(addr string, opts DialOptions) (*Client, error) {
	target, useTLS, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if useTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if opts.CAFile != "" {
			pem, err := os.ReadFile(opts.CAFile)
			if err != nil {
				return nil, errdefs.New(errdefs.ErrInvalidArgument, "read the CA file: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errdefs.New(errdefs.ErrInvalidArgument, "the CA file %s holds no PEM certificate", opts.CAFile)
			}
			cfg.RootCAs = pool
		}
		creds = credentials.NewTLS(cfg)
	}
	gopts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize),
			// Protobuf, with record batches decoded in one copy (codec.go).
			grpc.ForceCodecV2(newCodec())),
		// Results and intermediates arrive in messages of several MiB:
		// windows of 16 MiB per stream and 64 MiB per connection (grpc's
		// defaults start at 64 KiB) and 1 MiB buffers, as the server has.
		grpc.WithInitialWindowSize(16 << 20),
		grpc.WithInitialConnWindowSize(64 << 20),
		grpc.WithReadBufferSize(1 << 20),
		grpc.WithWriteBufferSize(1 << 20),
		experimental.WithBufferPool(recvPool),
	}
	if opts.RetryDelay > 0 {
		b := backoff.DefaultConfig
		b.MaxDelay = opts.RetryDelay
		gopts = append(gopts, grpc.WithConnectParams(grpc.ConnectParams{Backoff: b, MinConnectTimeout: 20 * time.Second}))
	}
	conn, err := grpc.NewClient(target, gopts...)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "server address %q: %v", addr, err)
	}
	return &Client{addr: addr, conn: conn, fc: flight.NewFlightServiceClient(conn), opts: opts}, nil
}

// Addr is the address the client talks to.
func (c *Client) Addr() string { return c.addr }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// callContext adds the API key to ctx.
func (c *Client) callContext(ctx context.Context) context.Context {
	if c.opts.APIKey == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.opts.APIKey)
}

// err converts the error of a call.
func (c *Client) err(err error) error { return FromStatus(err, c.addr) }

// Do runs an action and calls fn with each result's body, in order.
func (c *Client) Do(ctx context.Context, typ string, body any, fn func([]byte) error) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	stream, err := c.fc.DoAction(c.callContext(ctx), &flight.Action{Type: typ, Body: b})
	if err != nil {
		return c.err(err)
	}
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return c.err(err)
		}
		if fn != nil {
			if err := fn(r.GetBody()); err != nil {
				return err
			}
		}
	}
}

// call runs an action with one result, decoded into out (nil: ignored).
func (c *Client) call(ctx context.Context, typ string, body, out any) error {
	got := false
	err := c.Do(ctx, typ, body, func(b []byte) error {
		got = true
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: bad answer from the server: %w", strings.TrimPrefix(typ, ActionPrefix), err)
		}
		return nil
	})
	if err == nil && !got && out != nil {
		return fmt.Errorf("%s: the server sent no answer", strings.TrimPrefix(typ, ActionPrefix))
	}
	return err
}

// ServerInfo describes the server and the caller, and its host with the
// auto launcher and isolation.
func (c *Client) ServerInfo(ctx context.Context) (*ServerInfo, error) {
	return c.DescribeServer(ctx, ServerInfoBody{})
}

// DescribeServer describes the server and the caller, and how the server
// would start functions with b's launcher and isolation.
func (c *Client) DescribeServer(ctx context.Context, b ServerInfoBody) (*ServerInfo, error) {
	var info ServerInfo
	if err := c.call(ctx, ActionServerInfo, b, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

func (c *Client) options(o catalog.CommitOptions) CommitOptions {
	w := wireOptions(o)
	if w.Author == "" {
		w.Author = c.opts.Author
	}
	return w
}

func refString(r catalog.Ref) string {
	if r == (catalog.Ref{}) {
		return ""
	}
	return r.String()
}

// ListBranches implements catalog.Service.
func (c *Client) ListBranches(ctx context.Context) ([]catalog.BranchInfo, error) {
	var bs []Branch
	if err := c.call(ctx, ActionListBranches, struct{}{}, &bs); err != nil {
		return nil, err
	}
	out := make([]catalog.BranchInfo, len(bs))
	for i, b := range bs {
		out[i] = b.catalog()
	}
	return out, nil
}

// GetBranch implements catalog.Service.
func (c *Client) GetBranch(ctx context.Context, name catalog.BranchName) (catalog.BranchInfo, error) {
	var b Branch
	err := c.call(ctx, ActionGetBranch, NameBody{Name: string(name)}, &b)
	return b.catalog(), err
}

// CreateBranch implements catalog.Service.
func (c *Client) CreateBranch(ctx context.Context, name catalog.BranchName, from catalog.Ref) (catalog.BranchInfo, error) {
	var b Branch
	err := c.call(ctx, ActionCreateBranch, CreateRefBody{Name: string(name), From: refString(from)}, &b)
	return b.catalog(), err
}

// DeleteBranch implements catalog.Service.
func (c *Client) DeleteBranch(ctx context.Context, name catalog.BranchName) error {
	return c.call(ctx, ActionDeleteBranch, NameBody{Name: string(name)}, nil)
}

// RenameBranch implements catalog.Service.
func (c *Client) RenameBranch(ctx context.Context, from, to catalog.BranchName) (catalog.BranchInfo, error) {
	var b Branch
	err := c.call(ctx, ActionRenameBranch, RenameBody{From: string(from), To: string(to)}, &b)
	return b.catalog(), err
}

// ListTags implements catalog.Service.
func (c *Client) ListTags(ctx context.Context) ([]catalog.TagInfo, error) {
	var ts []catalog.TagInfo
	return ts, c.call(ctx, ActionListTags, struct{}{}, &ts)
}

// CreateTag implements catalog.Service.
func (c *Client) CreateTag(ctx context.Context, name catalog.TagName, from catalog.Ref) (catalog.TagInfo, error) {
	var t catalog.TagInfo
	return t, c.call(ctx, ActionCreateTag, CreateRefBody{Name: string(name), From: refString(from)}, &t)
}

// DeleteTag implements catalog.Service.
func (c *Client) DeleteTag(ctx context.Context, name catalog.TagName) error {
	return c.call(ctx, ActionDeleteTag, NameBody{Name: string(name)}, nil)
}

// Resolve implements catalog.Service.
func (c *Client) Resolve(ctx context.Context, ref catalog.Ref) (*catalog.Commit, error) {
	var cm *Commit
	if err := c.call(ctx, ActionResolve, RefBody{Ref: refString(ref)}, &cm); err != nil {
		return nil, err
	}
	return cm.Catalog(), nil
}

// Log implements catalog.Service.
func (c *Client) Log(ctx context.Context, ref catalog.Ref, limit int) ([]*catalog.Commit, error) {
	var cs []*Commit
	if err := c.call(ctx, ActionLog, RefBody{Ref: refString(ref), Limit: limit}, &cs); err != nil {
		return nil, err
	}
	out := make([]*catalog.Commit, len(cs))
	for i, cm := range cs {
		out[i] = cm.Catalog()
	}
	return out, nil
}

// ListNamespaces implements catalog.Service.
func (c *Client) ListNamespaces(ctx context.Context, ref catalog.Ref) ([]catalog.Namespace, error) {
	var ns []catalog.Namespace
	return ns, c.call(ctx, ActionListNamespaces, RefBody{Ref: refString(ref)}, &ns)
}

func (c *Client) commitCall(ctx context.Context, typ string, body any) (*catalog.Commit, error) {
	var cm *Commit
	if err := c.call(ctx, typ, body, &cm); err != nil {
		return nil, err
	}
	return cm.Catalog(), nil
}

// CreateNamespace implements catalog.Service.
func (c *Client) CreateNamespace(ctx context.Context, branch catalog.BranchName, ns catalog.Namespace, opts catalog.CommitOptions) (*catalog.Commit, error) {
	return c.commitCall(ctx, ActionCreateNamespace, NamespaceBody{Branch: string(branch), Namespace: string(ns), Commit: c.options(opts)})
}

// DeleteNamespace implements catalog.Service.
func (c *Client) DeleteNamespace(ctx context.Context, branch catalog.BranchName, ns catalog.Namespace, opts catalog.CommitOptions) (*catalog.Commit, error) {
	return c.commitCall(ctx, ActionDeleteNamespace, NamespaceBody{Branch: string(branch), Namespace: string(ns), Commit: c.options(opts)})
}

// ListTables implements catalog.Service.
func (c *Client) ListTables(ctx context.Context, ref catalog.Ref, ns catalog.Namespace) ([]catalog.TableSummary, error) {
	var ts []catalog.TableSummary
	if err := c.call(ctx, ActionListTables, TablesBody{Ref: refString(ref), Namespace: string(ns)}, &ts); err != nil {
		return nil, err
	}
	for i := range ts {
		ts[i].Ident = catalog.TableIdent{Namespace: ts[i].Namespace, Name: ts[i].Name}
	}
	return ts, nil
}

// GetTable implements catalog.Service.
func (c *Client) GetTable(ctx context.Context, ref catalog.Ref, id catalog.TableIdent) (*catalog.TableInfo, error) {
	var t catalog.TableInfo
	if err := c.call(ctx, ActionGetTable, TableBody{Ref: refString(ref), Namespace: string(id.Namespace), Table: id.Name}, &t); err != nil {
		return nil, err
	}
	t.Ident = catalog.TableIdent{Namespace: t.Namespace, Name: t.Name}
	return &t, nil
}

// TableEntry implements catalog.Service.
func (c *Client) TableEntry(ctx context.Context, ref catalog.Ref, id catalog.TableIdent) (catalog.TableEntry, *catalog.Commit, error) {
	var r TableEntryResult
	if err := c.call(ctx, ActionTableEntry, TableBody{Ref: refString(ref), Namespace: string(id.Namespace), Table: id.Name}, &r); err != nil {
		return catalog.TableEntry{}, nil, err
	}
	return r.Entry, r.Commit.Catalog(), nil
}

// DeleteTable implements catalog.Service.
func (c *Client) DeleteTable(ctx context.Context, branch catalog.BranchName, id catalog.TableIdent, opts catalog.CommitOptions) (*catalog.Commit, error) {
	return c.commitCall(ctx, ActionDeleteTable, TableBody{Branch: string(branch), Namespace: string(id.Namespace), Table: id.Name, Commit: c.options(opts)})
}

// TableHistory implements catalog.Service.
func (c *Client) TableHistory(ctx context.Context, ref catalog.Ref, id catalog.TableIdent, limit int) ([]catalog.TableChange, error) {
	var hs []TableChange
	if err := c.call(ctx, ActionTableHistory, TableBody{Ref: refString(ref), Namespace: string(id.Namespace), Table: id.Name, Limit: limit}, &hs); err != nil {
		return nil, err
	}
	out := make([]catalog.TableChange, len(hs))
	for i, h := range hs {
		out[i] = catalog.TableChange{Commit: h.Commit.Catalog(), Change: h.Change, SnapshotID: h.SnapshotID,
			ReplacedSnapshotID: h.ReplacedSnapshotID, MetadataLocation: h.MetadataLocation}
	}
	return out, nil
}

// RevertTable implements catalog.Service.
func (c *Client) RevertTable(ctx context.Context, branch catalog.BranchName, id catalog.TableIdent, from catalog.Ref, opts catalog.CommitOptions) (*catalog.Commit, error) {
	return c.commitCall(ctx, ActionRevertTable, TableBody{Branch: string(branch), Namespace: string(id.Namespace), Table: id.Name,
		From: refString(from), Commit: c.options(opts)})
}

// CommitTables implements catalog.Service.
func (c *Client) CommitTables(ctx context.Context, branch catalog.BranchName, base catalog.CommitID, changes catalog.Changes, opts catalog.CommitOptions) (*catalog.Commit, error) {
	body := CommitTablesBody{Branch: string(branch), Base: base, Commit: c.options(opts),
		Tables: map[string]*catalog.TableEntry{}, Namespaces: map[string]*catalog.NamespaceEntry{}}
	for id, e := range changes.Tables {
		body.Tables[id.String()] = e
	}
	for ns, e := range changes.Namespaces {
		body.Namespaces[string(ns)] = e
	}
	return c.commitCall(ctx, ActionCommitTables, body)
}

// Merge implements catalog.Service.
func (c *Client) Merge(ctx context.Context, req catalog.MergeRequest) (*catalog.MergeResult, error) {
	var r MergeResult
	err := c.call(ctx, ActionMerge, MergeBody{Source: refString(req.Source), Into: string(req.Into), Mode: string(req.Mode), Commit: c.options(req.Commit)}, &r)
	if err != nil {
		return nil, err
	}
	return &catalog.MergeResult{Outcome: r.Outcome, Base: r.Base, Commit: r.Commit.Catalog(), Changed: r.Changed, Combined: r.Combined}, nil
}

// Diff implements catalog.Service.
func (c *Client) Diff(ctx context.Context, from, to catalog.Ref, opts catalog.DiffOptions) (*catalog.DiffResult, error) {
	var d catalog.DiffResult
	if err := c.call(ctx, ActionDiff, DiffBody{From: refString(from), To: refString(to), Schema: opts.Schema}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
