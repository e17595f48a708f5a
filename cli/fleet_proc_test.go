package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// envTestVersion sets the version of the test binary acting as the CLI:
// a worker of another version.
const envTestVersion = "LAKEHOUSE_TEST_VERSION"

func init() {
	if v := os.Getenv(envTestVersion); v != "" && os.Getenv(envTestAsCLI) != "" {
		Version = v
	}
}

// Timing of the fleet tests: workers heartbeat every 250ms, the control
// plane drops them after 3s (twelve missed heartbeats: a loaded machine
// does not lose a worker by accident).
const (
	testHeartbeat     = "250ms"
	testWorkerTimeout = 3 * time.Second
)

// freeLoopback returns a loopback address with a port free now, for a
// server that restarts on the same address.
func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// fleetTest is a control plane with API keys, started as a process, and
// its workers.
type fleetTest struct {
	t        *testing.T
	keys     *authDir
	addr     string // the control plane's host:port
	control  *serveProc
	workers  map[string]*serveProc
	dirs     map[string]string // worker data dirs by name
	adminKey string
	// workerKey is of role worker, readerKey of role reader.
	workerKey, readerKey string
	admin                *flight.Client
}

// newFleetTest starts the control plane over a new data dir; env are
// more variables of the command that creates it (its warehouse).
func newFleetTest(t *testing.T, env ...map[string]string) *fleetTest {
	f := &fleetTest{t: t, keys: newAuthDir(t), addr: freeLoopback(t), workers: map[string]*serveProc{}, dirs: map[string]string{}}
	var admin flight.CreatedKey
	var initEnv map[string]string
	if len(env) > 0 {
		initEnv = env[0]
	}
	mustJSON(t, f.keys.must(initEnv, "-O", "json", "auth", "init", "--user", "root"), &admin)
	f.adminKey = admin.Key
	f.workerKey, _ = f.keys.createKey("--user", "fleet", "--role", "worker")
	f.readerKey, _ = f.keys.createKey("--user", "rob", "--role", "reader")
	f.startControl()
	c, err := flight.Dial(f.addr, flight.DialOptions{APIKey: f.adminKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f.admin = c
	return f
}

func (f *fleetTest) startControl() {
	f.control = startServe(f.t, f.keys.dataDir, f.addr, "--role", "control", "--worker-timeout", testWorkerTimeout.String())
}

// startWorker starts worker name on its data dir (made on first start),
// with more flags if given.
func (f *fleetTest) startWorker(name string, flags ...string) *serveProc {
	f.t.Helper()
	dir, ok := f.dirs[name]
	if !ok {
		dir = f.t.TempDir()
		f.dirs[name] = dir
	}
	w := startServe(f.t, dir, "127.0.0.1:0", append([]string{"--role", "worker", "--join", f.addr, "--name", name,
		"--key", f.workerKey, "--heartbeat", testHeartbeat}, flags...)...)
	f.workers[name] = w
	return w
}

// fleet lists the workers by name, as the control plane sees them.
func (f *fleetTest) fleet() map[string]fleet.WorkerInfo {
	f.t.Helper()
	ws, err := f.admin.ListWorkers(context.Background())
	if err != nil {
		f.t.Fatalf("ListWorkers: %v", err)
	}
	out := map[string]fleet.WorkerInfo{}
	for _, w := range ws {
		out[w.Name] = w
	}
	return out
}

// await polls the fleet until ok holds, for at most 20 s.
func (f *fleetTest) await(what string, ok func(map[string]fleet.WorkerInfo) bool) map[string]fleet.WorkerInfo {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ws := f.fleet()
		if ok(ws) {
			return ws
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within 20s; the fleet is %+v\ncontrol:\n%s", what, ws, f.control.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func alive(names ...string) func(map[string]fleet.WorkerInfo) bool {
	return func(ws map[string]fleet.WorkerInfo) bool {
		for _, n := range names {
			if ws[n].State != fleet.StateAlive {
				return false
			}
		}
		return true
	}
}

// TestFleetProcesses starts a control plane and three workers as
// processes and checks membership through kills, pauses and restarts.
func TestFleetProcesses(t *testing.T) {
	f := newFleetTest(t)
	for _, n := range []string{"w1", "w2", "w3"} {
		f.startWorker(n)
	}
	ws := f.await("three workers alive", alive("w1", "w2", "w3"))
	for n, w := range ws {
		if w.Addr != f.workers[n].hostPort() || w.Cores <= 0 || w.MemoryBytes <= 0 || w.Launcher == "" || w.Epoch < 1 || w.Version != Version {
			t.Errorf("worker %s: %+v (its data plane is %s)", n, w, f.workers[n].Addr)
		}
		// A worker never opens a catalog.
		if _, err := os.Stat(filepath.Join(f.dirs[n], "catalog.db")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("worker %s has a catalog file: %v", n, err)
		}
	}

	t.Run("workers ls", func(t *testing.T) {
		out, errOut, code := f.keys.remote(f.addr, f.readerKey, "workers", "ls")
		if code != 0 {
			t.Fatalf("workers ls: exit %d\n%s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAME  ADDRESS") || !strings.Contains(lines[0], "HEARTBEAT") {
			t.Fatalf("workers ls:\n%s", out)
		}
		for i, n := range []string{"w1", "w2", "w3"} {
			if f := strings.Fields(lines[i+1]); f[0] != n || f[2] != "alive" {
				t.Errorf("row %d: %s", i+1, lines[i+1])
			}
		}
		out, _, code = f.keys.remote(f.addr, f.readerKey, "workers", "ls", "-O", "json")
		var list []fleet.WorkerInfo
		if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list) != 3 {
			t.Fatalf("workers ls -O json: exit %d, %v\n%s", code, err, out)
		}
	})

	t.Run("SIGKILL, then restart", func(t *testing.T) {
		killed := time.Now()
		f.workers["w3"].kill()
		f.await("w3 lost", func(ws map[string]fleet.WorkerInfo) bool { return ws["w3"].State == fleet.StateLost })
		if d := time.Since(killed); d < testWorkerTimeout-testWorkerTimeout/4 {
			t.Errorf("w3 lost %s after its kill, before the timeout %s", d, testWorkerTimeout)
		}
		if ws := f.fleet(); ws["w1"].State != fleet.StateAlive || ws["w2"].State != fleet.StateAlive {
			t.Fatalf("the others: %+v", ws)
		}
		f.startWorker("w3")
		ws := f.await("w3 alive again", alive("w3"))
		if ws["w3"].Epoch < 2 {
			t.Errorf("w3 after its restart: epoch %d, want 2 or more", ws["w3"].Epoch)
		}
	})

	t.Run("SIGSTOP past the timeout, then SIGCONT", func(t *testing.T) {
		w2 := f.workers["w2"]
		old := f.fleet()["w2"]
		if err := syscall.Kill(w2.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		f.await("w2 lost", func(ws map[string]fleet.WorkerInfo) bool { return ws["w2"].State == fleet.StateLost })
		if err := syscall.Kill(w2.Pid(), syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		ws := f.await("w2 registered again", func(ws map[string]fleet.WorkerInfo) bool {
			return ws["w2"].State == fleet.StateAlive && ws["w2"].Epoch > old.Epoch
		})
		if ws["w2"].Lease == old.Lease {
			t.Fatalf("w2 alive under its old lease %s", old.Lease)
		}
		// Its old lease is dead for good: what it sends under it is refused.
		c, err := flight.Dial(f.addr, flight.DialOptions{APIKey: f.workerKey})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.WorkerHeartbeat(context.Background(), fleet.Heartbeat{Name: "w2", Lease: old.Lease})
		if !errdefs.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "is dead") {
			t.Fatalf("heartbeat under the old lease: %v", err)
		}
		if !strings.Contains(w2.out.String(), "worker w2 registered again") {
			t.Errorf("w2 did not say it registered again:\n%s", w2.out)
		}
	})

	t.Run("control plane restarts", func(t *testing.T) {
		before := f.fleet()
		if _, err := f.control.stop(30 * time.Second); err != nil {
			t.Fatalf("control plane stop: %v\n%s", err, f.control.out)
		}
		f.startControl()
		ws := f.await("workers registered again", alive("w1", "w2", "w3"))
		for n, w := range ws {
			if w.Lease == before[n].Lease {
				t.Errorf("worker %s after the restart: lease %s epoch %d (before: %s)", n, w.Lease, w.Epoch, before[n].Lease)
			}
		}
	})

	t.Run("a ticket the worker does not hold", func(t *testing.T) {
		// A query's ticket from the control plane, taken to a worker.
		c, err := flight.Dial(f.addr, flight.DialOptions{APIKey: f.readerKey})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx := context.Background()
		r, err := c.Query(ctx, flight.QueryCommand{SQL: "SELECT 1 AS one"})
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
		conn, err := grpc.NewClient(f.workers["w1"].hostPort(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, tkt := range []string{`{"query_id":"0123456789abcdef0123456789abcdef"}`} {
			stream, err := arrowflight.NewFlightServiceClient(conn).DoGet(ctx, &arrowflight.Ticket{Ticket: []byte(tkt)})
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) != codes.NotFound {
				t.Errorf("DoGet %s on a worker: %v, want NotFound", tkt, err)
			}
		}
	})

	t.Run("bad input", func(t *testing.T) {
		join := func(t *testing.T, name, key string, env ...string) (string, int) {
			dir := t.TempDir()
			args := []string{"serve", "--role", "worker", "--join", f.addr, "--name", name, "--key", key,
				"--flight-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}
			if len(env) > 0 {
				return runCLIEnv(t, dir, env, args...)
			}
			return runCLI(t, dir, args...)
		}
		for _, tc := range []struct {
			name, worker, key string
			env               []string
			code              int
			msg               string
		}{
			{"wrong key", "w9", "lh_0000_bogus", nil, errdefs.ExitPermissionDenied, "API key"},
			{"reader key", "w9", f.readerKey, nil, errdefs.ExitPermissionDenied, "a worker needs a key of role worker"},
			{"other version", "w9", f.workerKey, []string{envTestVersion + "=v0.0.1-other"}, errdefs.ExitConflict,
				"worker w9 runs lakehouse v0.0.1-other, and the control plane runs " + Version},
			{"same name as a live worker", "w1", f.workerKey, nil, errdefs.ExitConflict, "give this worker another name with --name"},
			{"bad name", "W 1", f.workerKey, nil, errdefs.ExitUsage, "invalid worker name"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, code := join(t, tc.worker, tc.key, tc.env...)
				if code != tc.code || !strings.Contains(out, tc.msg) {
					t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.msg, out)
				}
			})
		}
		if ws := f.fleet(); len(ws) != 3 || ws["w9"].Name != "" {
			t.Errorf("the fleet after bad joins: %+v", ws)
		}
	})
}

// runCLIEnv is runCLI with more environment variables.
func runCLIEnv(t *testing.T, dataDir string, env []string, args ...string) (string, int) {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return runCLI(t, dataDir, args...)
}

// TestServeRoleFlags: flags of one role given to another, a worker
// without --join, and workers ls without a control plane.
func TestServeRoleFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"serve", "--role", "bogus"}, errdefs.ExitUsage, "use --role all, control or worker"},
		{[]string{"serve", "--join", "127.0.0.1:1"}, errdefs.ExitUsage, "--join is for --role worker, not all"},
		{[]string{"serve", "--role", "worker", "--worker-timeout", "5s"}, errdefs.ExitUsage, "--worker-timeout is for --role control"},
		{[]string{"serve", "--role", "worker", "--max-upload-bytes", "1GiB"}, errdefs.ExitUsage, "--max-upload-bytes is for --role all or control"},
		{[]string{"serve", "--role", "worker"}, errdefs.ExitUsage, "give --join HOST:PORT"},
		{[]string{"serve", "--role", "worker", "--join", "http://x:1"}, errdefs.ExitUsage, "invalid server address"},
		{[]string{"serve", "--role", "worker", "--join", "127.0.0.1:1", "--heartbeat", "0s"}, errdefs.ExitUsage, "invalid --heartbeat"},
		{[]string{"serve", "--role", "control", "--worker-timeout", "10ms"}, errdefs.ExitUsage, "invalid --worker-timeout"},
		{[]string{"serve", "--role", "control", "--shm-reserve", "1GiB"}, errdefs.ExitUsage, "--shm-reserve is for --role worker, not control"},
		{[]string{"serve", "--role", "worker", "--join", "127.0.0.1:1", "--shm-reserve", "1MiB"}, errdefs.ExitUsage,
			`invalid --shm-reserve "1MiB": use 0 (none) or a size of at least 64MiB`},
		{[]string{"serve", "--role", "worker", "--join", "127.0.0.1:1", "--shm-reserve", "lots"}, errdefs.ExitUsage, "invalid --shm-reserve"},
		{[]string{"serve", "--role", "worker", "--join", "127.0.0.1:1", "--shm-reserve", "-1GiB"}, errdefs.ExitUsage, "invalid --shm-reserve"},
		{[]string{"serve", "--role", "worker", "--join", "127.0.0.1:1", "--shm-reserve", "nan"}, errdefs.ExitUsage, "invalid --shm-reserve"},
		{[]string{"serve", "--role", "worker", "--join", "127.0.0.1:1", "--shm-reserve", "1000TiB"}, errdefs.ExitUsage,
			"a reserve takes at most half of it"},
		{[]string{"--warehouse", "file:///nonexistent/warehouse", "serve", "--role", "worker", "--join", "127.0.0.1:1"},
			errdefs.ExitUsage, "worker --warehouse file:///nonexistent/warehouse: no such directory on this machine"},
		{[]string{"--warehouse", "ftp://x", "serve", "--role", "worker", "--join", "127.0.0.1:1"}, errdefs.ExitUsage, "invalid warehouse"},
		{[]string{"workers", "ls"}, errdefs.ExitConflict, "give the control plane's address with --addr"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, code := runCLI(t, dir, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.msg) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.msg, out)
			}
		})
	}
	// None of them left state behind.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("refused commands left %v in the data dir", names)
	}
}
