package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// syncBuffer is a bytes.Buffer a server goroutine writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// authDir is a data dir, its keys and the CLI run in-process over it.
type authDir struct {
	t       *testing.T
	dataDir string
	// client is the data dir of clients (their profiles), apart from the
	// server's.
	client string
}

func newAuthDir(t *testing.T) *authDir {
	return &authDir{t: t, dataDir: t.TempDir(), client: t.TempDir()}
}

// lh runs the CLI on the server's data dir; env adds variables.
func (d *authDir) lh(env map[string]string, args ...string) (stdout, stderr string, code int) {
	return d.runIn(d.dataDir, env, args...)
}

// remote runs the CLI as a client of addr with key.
func (d *authDir) remote(addr, key string, args ...string) (stdout, stderr string, code int) {
	env := map[string]string{envAddr: addr}
	if key != "" {
		env[envAPIKey] = key
	}
	return d.runIn(d.client, env, args...)
}

func (d *authDir) runIn(dataDir string, extra map[string]string, args ...string) (string, string, int) {
	return d.runInFor(time.Minute, dataDir, extra, args...)
}

// runInFor is runIn for commands that may take up to timeout.
func (d *authDir) runInFor(timeout time.Duration, dataDir string, extra map[string]string, args ...string) (string, string, int) {
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	for k, v := range extra {
		env[k] = v
	}
	var stdout, stderr bytes.Buffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	code := run(ctx, append([]string{"lakehouse"}, args...), e)
	return stdout.String(), stderr.String(), code
}

func (d *authDir) must(env map[string]string, args ...string) string {
	d.t.Helper()
	out, errOut, code := d.lh(env, args...)
	if code != 0 {
		d.t.Fatalf("lakehouse %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// createKey makes a key on the local data dir and returns it and its id.
func (d *authDir) createKey(args ...string) (key, id string) {
	d.t.Helper()
	var k flight.CreatedKey
	mustJSON(d.t, d.must(nil, append([]string{"-O", "json", "auth", "key", "create"}, args...)...), &k)
	return k.Key, k.ID
}

var flightAddrRE = regexp.MustCompile(`flight on (grpc(?:\+tls)?://\S+),`)

// serve starts `lakehouse serve` in-process on loopback ports and returns
// its address; the server stops when the test ends.
func (d *authDir) serve(args ...string) string {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	env := map[string]string{envDataDir: d.dataDir, envUser: "tester", "HOME": d.dataDir}
	e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"lakehouse", "serve", "--flight-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--shutdown-timeout", "5s"}, args...), e)
	}()
	d.t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				d.t.Errorf("serve exited %d\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			d.t.Errorf("serve did not stop\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := flightAddrRE.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			done <- code
			d.t.Fatalf("serve exited %d before listening\n%s%s", code, stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.t.Fatalf("serve did not start\n%s%s", stdout.String(), stderr.String())
	return ""
}

// writeCSV writes a small table file.
func writeCSV(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "t.csv")
	if err := os.WriteFile(p, []byte("id,name\n1,a\n2,b\n3,c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAuthRoles runs every role against every kind of call on a real
// server, and checks the allow/deny table of the issue.
func TestAuthRoles(t *testing.T) {
	d := newAuthDir(t)
	var admin flight.CreatedKey
	mustJSON(t, d.must(nil, "-O", "json", "auth", "init", "--user", "root"), &admin)
	if admin.Role != "admin" || admin.User != "root" || !strings.HasPrefix(admin.Key, "lh_"+admin.ID+"_") {
		t.Fatalf("auth init made %+v", admin)
	}
	if _, errOut, code := d.lh(nil, "auth", "init"); code != 4 || !strings.Contains(errOut, "has API keys already") {
		t.Errorf("second auth init: exit %d %s", code, errOut)
	}
	keysOf := map[string]string{"root": admin.Key}
	for _, u := range []struct{ user, role string }{{"alice", "writer"}, {"bob", "writer"}, {"rob", "reader"}, {"w1", "worker"}} {
		keysOf[u.user], _ = d.createKey("--user", u.user, "--role", u.role)
	}
	_, spareID := d.createKey("--user", "spare", "--role", "reader")

	// main holds table t; every user has a branch <user>.work with it.
	d.must(nil, "checkout", "-b", "root.setup")
	d.must(nil, "table", "import", "t", "--from", writeCSV(t))
	d.must(nil, "merge", "root.setup", "--into", "main")
	for _, u := range []string{"root", "alice", "bob", "rob", "w1"} {
		d.must(nil, "branch", "create", u+".work", "--from-ref", "main")
	}
	d.must(nil, "tag", "create", "v0", "--from-ref", "main")
	// The keys never reach the store: only their hashes.
	raw, err := os.ReadFile(filepath.Join(d.dataDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	for u, k := range keysOf {
		if bytes.Contains(raw, []byte(k[len(k)-43:])) {
			t.Errorf("the catalog file holds %s's secret", u)
		}
	}

	addr := d.serve()
	ctx := context.Background()
	table := catalog.TableIdent{Namespace: catalog.DefaultNamespace, Name: "t"}
	main := catalog.Ref{Name: "main"}

	type op struct {
		name string
		do   func(c *flight.Client, user string) error
	}
	ops := []op{
		{"list branches", func(c *flight.Client, _ string) error { _, err := c.ListBranches(ctx); return err }},
		{"query", func(c *flight.Client, _ string) error {
			r, err := c.Query(ctx, flight.QueryCommand{SQL: "SELECT count(*) AS n FROM t", Ref: "main"})
			if err != nil {
				return err
			}
			defer r.Release()
			for r.Next() {
			}
			return r.Err()
		}},
		{"create own branch", func(c *flight.Client, u string) error {
			_, err := c.CreateBranch(ctx, catalog.BranchName(u+".new"), main)
			return err
		}},
		{"create another user's branch", func(c *flight.Client, _ string) error {
			_, err := c.CreateBranch(ctx, "zed.new", main)
			return err
		}},
		{"write main directly", func(c *flight.Client, _ string) error {
			_, err := c.CreateNamespace(ctx, catalog.MainBranch, "direct", catalog.CommitOptions{})
			return err
		}},
		{"merge main into own branch", func(c *flight.Client, u string) error {
			_, err := c.Merge(ctx, catalog.MergeRequest{Source: main, Into: catalog.BranchName(u + ".work")})
			return err
		}},
		{"merge own branch into main", func(c *flight.Client, u string) error {
			_, err := c.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: u + ".work"}, Into: catalog.MainBranch})
			return err
		}},
		{"merge another user's branch into main", func(c *flight.Client, _ string) error {
			_, err := c.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: "bob.work"}, Into: catalog.MainBranch})
			return err
		}},
		{"delete table on own branch", func(c *flight.Client, u string) error {
			_, err := c.DeleteTable(ctx, catalog.BranchName(u+".work"), table, catalog.CommitOptions{})
			return err
		}},
		{"delete table on another user's branch", func(c *flight.Client, _ string) error {
			_, err := c.DeleteTable(ctx, "bob.work", table, catalog.CommitOptions{})
			return err
		}},
		{"rename main", func(c *flight.Client, u string) error {
			_, err := c.RenameBranch(ctx, catalog.MainBranch, catalog.BranchName(u+".main"))
			return err
		}},
		{"delete own branch", func(c *flight.Client, u string) error {
			return c.DeleteBranch(ctx, catalog.BranchName(u+".new"))
		}},
		{"create tag", func(c *flight.Client, u string) error {
			_, err := c.CreateTag(ctx, catalog.TagName("rel-"+u), main)
			return err
		}},
		{"delete tag", func(c *flight.Client, _ string) error { return c.DeleteTag(ctx, "v0") }},
		{"list keys", func(c *flight.Client, _ string) error { _, err := c.ListKeys(ctx); return err }},
		{"create key", func(c *flight.Client, u string) error {
			_, err := c.CreateKey(ctx, "made-by-"+u, flight.RoleReader, time.Hour)
			return err
		}},
		{"revoke key", func(c *flight.Client, _ string) error { _, err := c.RevokeKey(ctx, spareID); return err }},
		// The server runs --role all: a worker's key passes, and the
		// server says it has no fleet.
		{"join the fleet", func(c *flight.Client, u string) error {
			_, err := c.RegisterWorker(ctx, fleet.Registration{Name: u})
			return err
		}},
	}
	// want[op][user]: nil allowed, else the error class. main takes
	// writes only by merge, so an admin's direct write fails in the
	// catalog, not in the policy.
	deny := errdefs.ErrPermissionDenied
	type row map[string]error
	want := map[string]row{
		"list branches":                         {"root": nil, "alice": nil, "rob": nil, "w1": deny},
		"query":                                 {"root": nil, "alice": nil, "rob": nil, "w1": deny},
		"join the fleet":                        {"root": deny, "alice": deny, "rob": deny, "w1": errdefs.ErrFailedPrecondition},
		"create own branch":                     {"root": nil, "alice": nil, "rob": deny, "w1": deny},
		"create another user's branch":          {"root": nil, "alice": deny, "rob": deny, "w1": deny},
		"write main directly":                   {"root": errdefs.ErrFailedPrecondition, "alice": deny, "rob": deny, "w1": deny},
		"merge main into own branch":            {"root": nil, "alice": nil, "rob": deny, "w1": deny},
		"merge own branch into main":            {"root": nil, "alice": nil, "rob": deny, "w1": deny},
		"merge another user's branch into main": {"root": nil, "alice": deny, "rob": deny, "w1": deny},
		"delete table on own branch":            {"root": nil, "alice": nil, "rob": deny, "w1": deny},
		"delete table on another user's branch": {"root": nil, "alice": deny, "rob": deny, "w1": deny},
		"rename main":                           {"root": errdefs.ErrFailedPrecondition, "alice": deny, "rob": deny, "w1": deny},
		"delete own branch":                     {"root": nil, "alice": nil, "rob": deny, "w1": deny},
		"create tag":                            {"root": nil, "alice": deny, "rob": deny, "w1": deny},
		"delete tag":                            {"root": nil, "alice": deny, "rob": deny, "w1": deny},
		"list keys":                             {"root": nil, "alice": deny, "rob": deny, "w1": deny},
		"create key":                            {"root": nil, "alice": deny, "rob": deny, "w1": deny},
		"revoke key":                            {"root": nil, "alice": deny, "rob": deny, "w1": deny},
	}
	// Non-admins first: the admin's calls change what the others see
	// (it deletes bob.work's table and the tag).
	for _, user := range []string{"alice", "rob", "w1", "root"} {
		c, err := flight.Dial(addr, flight.DialOptions{APIKey: keysOf[user]})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, o := range ops {
			w, ok := want[o.name][user]
			if !ok {
				t.Fatalf("no expectation for %s / %s", o.name, user)
			}
			err := o.do(c, user)
			switch {
			case w == nil && err != nil:
				t.Errorf("%s: %s: %v, want allowed", user, o.name, err)
			case w != nil && !errdefs.Is(err, w):
				t.Errorf("%s: %s: %v, want %v", user, o.name, err, w)
			}
		}
	}

	t.Run("commit author is the key's user", func(t *testing.T) {
		c, err := flight.Dial(addr, flight.DialOptions{APIKey: keysOf["alice"], Author: "mallory"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cm, err := c.CreateNamespace(ctx, "alice.work", "mine", catalog.CommitOptions{Author: "mallory", Message: "who am I"})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Author != "alice" {
			t.Errorf("commit author = %q, want alice (the key's user)", cm.Author)
		}
		log, err := c.Log(ctx, catalog.Ref{Name: "alice.work"}, 1)
		if err != nil || len(log) != 1 || log[0].Author != "alice" {
			t.Errorf("log of alice.work = %+v, %v", log, err)
		}
		info, err := c.ServerInfo(ctx)
		if err != nil || !info.Auth || info.User != "alice" || info.UserRole != "writer" {
			t.Errorf("ServerInfo = %+v, %v", info, err)
		}
		// `lakehouse info` names the key's user and the server's data dir.
		out, errOut, code := d.remote(addr, keysOf["alice"], "info")
		for _, w := range []string{"auth:           api keys", "user:           alice (writer)", "data dir:       " + d.dataDir} {
			if code != 0 || !strings.Contains(out, w) {
				t.Errorf("lakehouse info as alice exited %d, want a line %q:\n%s%s", code, w, out, errOut)
			}
		}
	})

	t.Run("bad keys", func(t *testing.T) {
		expiring, errOut, code := d.remote(addr, admin.Key, "-O", "json", "auth", "key", "create", "--user", "brief", "--role", "reader", "--expires", "1s")
		if code != 0 {
			t.Fatalf("remote key create: exit %d %s", code, errOut)
		}
		var exp flight.CreatedKey
		mustJSON(t, expiring, &exp)
		k := keysOf["alice"]
		tests := []struct{ name, key, want string }{
			{"missing", "", "this server needs an API key"},
			{"wrong secret", k[:len(k)-2] + "xx", "invalid API key"},
			{"unknown key id", "lh_0123456789abcdef" + k[len("lh_")+16:], "invalid API key"},
			{"not a key", "hunter2", "invalid API key"},
			{"expired", exp.Key, "API key " + exp.ID + " expired"},
		}
		time.Sleep(time.Until(exp.Expires.Add(10 * time.Millisecond)))
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out, errOut, code := d.remote(addr, tt.key, "branch", "ls")
				if code != 5 || out != "" {
					t.Errorf("exit %d, want 5; stdout %q", code, out)
				}
				if !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "LAKEHOUSE_API_KEY") ||
					!strings.Contains(errOut, "lakehouse config set api_key") {
					t.Errorf("stderr %q does not say %q and how to pass a key", errOut, tt.want)
				}
				_, errJSON, _ := d.remote(addr, tt.key, "-O", "json", "branch", "ls")
				var v errorView
				mustJSON(t, errJSON, &v)
				if v.Class != "unauthenticated" || v.Code != 5 {
					t.Errorf("-O json error = %+v", v)
				}
			})
		}
		// An unknown id and a wrong secret read alike.
		_, e1, _ := d.remote(addr, tests[1].key, "branch", "ls")
		_, e2, _ := d.remote(addr, tests[2].key, "branch", "ls")
		if e1 != e2 {
			t.Errorf("unknown id and wrong secret differ:\n%s%s", e1, e2)
		}
		// On the wire: gRPC Unauthenticated, for every call.
		conn, err := grpc.NewClient(strings.TrimPrefix(addr, "grpc://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		stream, err := arrowflight.NewFlightServiceClient(conn).ListActions(ctx, &arrowflight.Empty{})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("ListActions without a key: %v, want Unauthenticated", err)
		}
	})

	t.Run("revoked through the server", func(t *testing.T) {
		var k flight.CreatedKey
		out, errOut, code := d.remote(addr, admin.Key, "-O", "json", "auth", "key", "create", "--user", "eve", "--role", "writer")
		if code != 0 {
			t.Fatalf("remote key create: exit %d %s", code, errOut)
		}
		mustJSON(t, out, &k)
		key, id := k.Key, k.ID
		if _, errOut, code := d.remote(addr, key, "branch", "ls"); code != 0 {
			t.Fatalf("eve's new key: exit %d %s", code, errOut)
		}
		if _, errOut, code := d.remote(addr, keysOf["alice"], "auth", "key", "revoke", id); code != 5 || !strings.Contains(errOut, "admin") {
			t.Errorf("writer revoking a key: exit %d %s", code, errOut)
		}
		if out, errOut, code := d.remote(addr, admin.Key, "auth", "key", "revoke", id); code != 0 || !strings.Contains(out, "revoked key "+id) {
			t.Fatalf("revoke: exit %d %s%s", code, out, errOut)
		}
		_, errOut, code = d.remote(addr, key, "branch", "ls")
		if code != 5 || !strings.Contains(errOut, "API key "+id+" was revoked") {
			t.Errorf("revoked key: exit %d %s", code, errOut)
		}
		out, _, _ = d.remote(addr, admin.Key, "auth", "key", "ls")
		if !regexp.MustCompile(id + `\s+eve\s+writer\s+revoked`).MatchString(out) {
			t.Errorf("key ls does not show %s revoked:\n%s", id, out)
		}
		for _, secret := range keysOf {
			if strings.Contains(out, secret[len(secret)-43:]) {
				t.Errorf("key ls shows a secret:\n%s", out)
			}
		}
		// The last admin key is not revoked over the wire.
		if _, errOut, code := d.remote(addr, admin.Key, "auth", "key", "revoke", admin.ID); code != 4 || !strings.Contains(errOut, "last active admin key") {
			t.Errorf("revoking the last admin key: exit %d %s", code, errOut)
		}
		// Nor is a local command let in while the server holds the file.
		if _, errOut, code := d.lh(map[string]string{envLockTimeout: "100ms"}, "auth", "key", "ls"); code != 6 || !strings.Contains(errOut, "--addr") {
			t.Errorf("local key ls beside the server: exit %d %s", code, errOut)
		}
	})
}

// TestAuthServeRefusals: a server beyond loopback needs keys, and a server
// without keys makes none over the wire.
func TestAuthServeRefusals(t *testing.T) {
	d := newAuthDir(t)
	for _, args := range [][]string{
		{"--flight-addr", "0.0.0.0:0", "--http-addr", "127.0.0.1:0"},
		{"--flight-addr", "127.0.0.1:0", "--http-addr", "0.0.0.0:0"},
	} {
		out, errOut, code := d.lh(nil, append([]string{"serve"}, args...)...)
		if code != 4 || !strings.Contains(errOut, "lakehouse auth init") || strings.Contains(out, "flight on") {
			t.Errorf("serve %s without keys: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}

	addr := d.serve()
	_, errOut, code := d.remote(addr, "", "auth", "key", "create", "--user", "alice", "--role", "writer")
	if code != 4 || !strings.Contains(errOut, "lakehouse auth init") {
		t.Errorf("key create on a server without keys: exit %d %s", code, errOut)
	}
	if out, errOut, code := d.remote(addr, "", "auth", "key", "ls"); code != 0 || !strings.Contains(out, "no API keys") {
		t.Errorf("key ls on a server without keys: exit %d %s%s", code, out, errOut)
	}
	if _, errOut, code := d.remote(addr, "", "auth", "init"); code != 4 || !strings.Contains(errOut, "local data dir") {
		t.Errorf("auth init with --addr: exit %d %s", code, errOut)
	}
}

// TestAuthTLS: a server with keys over TLS, its CA given to the client
// with LAKEHOUSE_TLS_CA.
func TestAuthTLS(t *testing.T) {
	d := newAuthDir(t)
	var admin flight.CreatedKey
	mustJSON(t, d.must(nil, "-O", "json", "auth", "init", "--user", "root"), &admin)
	ca, cert, key := writeTestCerts(t)
	addr := d.serve("--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(addr, "grpc+tls://") {
		t.Fatalf("serve with TLS listens on %s", addr)
	}
	run := func(env map[string]string, args ...string) (string, string, int) {
		return d.runIn(d.client, env, args...)
	}
	env := map[string]string{envAddr: addr, envAPIKey: admin.Key, envTLSCA: ca}
	if out, errOut, code := run(env, "-O", "json", "auth", "key", "create", "--user", "alice", "--role", "reader"); code != 0 || !strings.Contains(out, `"key": "lh_`) {
		t.Fatalf("key create over TLS: exit %d %s%s", code, out, errOut)
	}
	if out, errOut, code := run(env, "branch", "ls"); code != 0 || !strings.Contains(out, "main") {
		t.Errorf("branch ls over TLS: exit %d %s%s", code, out, errOut)
	}
	// Without the CA the client does not trust the server.
	if _, errOut, code := run(map[string]string{envAddr: addr, envAPIKey: admin.Key}, "branch", "ls"); code != 6 {
		t.Errorf("branch ls without the CA: exit %d %s", code, errOut)
	}
	// A plaintext client does not get through.
	plain := "grpc://" + strings.TrimPrefix(addr, "grpc+tls://")
	if _, errOut, code := run(map[string]string{envAddr: plain, envAPIKey: admin.Key}, "branch", "ls"); code == 0 {
		t.Errorf("plaintext client of a TLS server: exit 0 %s", errOut)
	}
}

// writeTestCerts writes a CA and a server certificate for 127.0.0.1 it
// signed, and returns the paths of the CA, the certificate and its key.
func writeTestCerts(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lakehouse test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

func TestParseLifetime(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"720h": 720 * time.Hour, "30d": 30 * 24 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseLifetime(in); err != nil || got != want {
			t.Errorf("parseLifetime(%q) = %s, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "-1h", "d", "1.5d", "soon"} {
		if _, err := parseLifetime(in); err == nil {
			t.Errorf("parseLifetime(%q) accepted", in)
		}
	}
}
