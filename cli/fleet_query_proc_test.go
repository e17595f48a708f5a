package cli

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// queriesServed is how many queries a server streamed, from its /metrics.
func queriesServed(t *testing.T, p *serveProc) int {
	t.Helper()
	return metricValue(t, p, "lakehouse_query_duration_seconds_count")
}

// metricValue is the value of a counter of a server's /metrics.
func metricValue(t *testing.T, p *serveProc, name string) int {
	t.Helper()
	resp, err := http.Get("http://" + p.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in the metrics of %s", name, p.HTTPAddr)
	return 0
}

// TestFleetQueriesOnWorkers: a control plane and two workers on an S3
// warehouse (MinIO). A client that follows locations gets its rows from
// a worker, the same rows as embedded mode; workers refuse tickets they
// did not get from their control plane; a worker gone between
// GetFlightInfo and DoGet costs the client one more GetFlightInfo.
func TestFleetQueriesOnWorkers(t *testing.T) {
	srv := miniotest.Start(t)
	// The control plane and the workers read the same warehouse with
	// their own S3 settings.
	wh := map[string]string{envWarehouse: "s3://" + srv.Bucket + "/fleetq", envS3Endpoint: srv.Endpoint}
	for k, v := range wh {
		t.Setenv(k, v)
	}
	f := newFleetTest(t, wh)
	f.startWorker("w1")
	f.startWorker("w2")
	f.await("two workers alive", alive("w1", "w2"))

	admin := func(dir string, env map[string]string, args ...string) string {
		t.Helper()
		out, errOut, code := f.keys.runIn(dir, env, args...)
		if code != 0 {
			t.Fatalf("lakehouse %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	remoteEnv := map[string]string{envAddr: f.addr, envAPIKey: f.adminKey}
	embedded := t.TempDir()
	local := map[string]string{envWarehouse: "", envS3Endpoint: ""}
	for dir, env := range map[string]map[string]string{f.keys.client: remoteEnv, embedded: local} {
		for _, args := range [][]string{
			{"checkout", "-b", "root.dev"},
			{"namespace", "create", "sales"},
			{"table", "import", "sales.transactions", "--from", testdataDir(t, "sample", "transactions")},
			{"merge", "root.dev", "--into", "main"},
		} {
			admin(dir, env, args...)
		}
	}
	queries := []string{
		"SELECT count(*) AS n, sum(usd) AS usd FROM sales.transactions",
		"SELECT country, count(*) AS n, min(id) AS first FROM sales.transactions WHERE usd > 50 GROUP BY country ORDER BY country",
	}
	served := func() int { return queriesServed(t, f.workers["w1"]) + queriesServed(t, f.workers["w2"]) }
	controlBefore := queriesServed(t, f.control)
	for i, sql := range queries {
		want := admin(embedded, local, "query", sql, "-O", "csv", "--ref", "main")
		before := served()
		got := admin(f.keys.client, map[string]string{envAddr: f.addr, envAPIKey: f.readerKey}, "query", sql, "-O", "csv", "--ref", "main")
		if got != want {
			t.Errorf("query %d through the fleet:\n%s\nembedded:\n%s", i, got, want)
		}
		if after := served(); after != before+1 {
			t.Errorf("query %d: the workers served %d queries, want 1", i, after-before)
		}
	}
	if n := queriesServed(t, f.control); n != controlBefore {
		t.Errorf("the control plane streamed %d queries itself", n-controlBefore)
	}

	// A client that does not follow locations reads from the control plane.
	t.Run("client without locations", func(t *testing.T) {
		info := flightInfo(t, f, flight.QueryCommand{SQL: queries[0]})
		if loc := info.GetEndpoint()[0].GetLocation(); len(loc) != 0 {
			t.Fatalf("endpoint located at %v", loc)
		}
	})

	t.Run("tickets a worker refuses", func(t *testing.T) {
		info := flightInfo(t, f, flight.QueryCommand{SQL: queries[0], Locations: true})
		ep := info.GetEndpoint()[0]
		placedOn := ""
		for n, w := range f.workers {
			if ep.GetLocation()[0].GetUri() == "grpc+tcp://"+w.hostPort() {
				placedOn = n
			}
		}
		if placedOn == "" {
			t.Fatalf("endpoint at %v, not a worker", ep.GetLocation())
		}
		other := map[string]string{"w1": "w2", "w2": "w1"}[placedOn]
		var tkt struct {
			Placed json.RawMessage `json:"placed"`
			Sig    string          `json:"sig"`
		}
		if err := json.Unmarshal(ep.GetTicket().GetTicket(), &tkt); err != nil {
			t.Fatal(err)
		}
		var placed flight.PlacedQuery
		if err := json.Unmarshal(tkt.Placed, &placed); err != nil {
			t.Fatal(err)
		}
		key := f.ticketKey(t)
		sign := func(key []byte, p flight.PlacedQuery) []byte {
			b, err := flight.SignPlaced(key, p)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		forged := placed
		forged.SQL = "SELECT * FROM read_csv('/etc/passwd')"
		forgedBody, _ := json.Marshal(forged)
		swapped, _ := json.Marshal(map[string]any{"placed": json.RawMessage(forgedBody), "sig": tkt.Sig})
		expired := placed
		expired.Expires = time.Now().Add(-time.Minute)
		for _, tc := range []struct {
			name   string
			worker string
			ticket []byte
			code   codes.Code
			msg    string
		}{
			{"forged SQL", placedOn, swapped, codes.PermissionDenied, "not signed by this worker's control plane"},
			{"another key", placedOn, sign([]byte("not the fleet's key"), placed), codes.PermissionDenied, "not signed"},
			{"expired", placedOn, sign(key, expired), codes.NotFound, "expired"},
			{"another worker's", other, ep.GetTicket().GetTicket(), codes.NotFound, "is for worker " + placedOn},
			{"a control plane's query id", placedOn, []byte(`{"query_id":"0123456789abcdef0123456789abcdef"}`), codes.NotFound, "unknown"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := doGet(t, f.workers[tc.worker].hostPort(), tc.ticket)
				if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("DoGet: %v, want %s with %q", err, tc.code, tc.msg)
				}
			})
		}
		// The genuine ticket works, once.
		if err := doGet(t, f.workers[placedOn].hostPort(), ep.GetTicket().GetTicket()); err != nil {
			t.Fatalf("DoGet of the genuine ticket: %v", err)
		}
	})

	t.Run("worker killed before DoGet", func(t *testing.T) {
		// Heartbeats settle what was placed before; then w1, first by
		// name among equally loaded workers, is killed while the control
		// plane still counts it alive.
		time.Sleep(time.Second)
		f.workers["w1"].kill()
		if ws := f.fleet(); ws["w1"].State != fleet.StateAlive {
			t.Fatalf("w1 already lost: %+v", ws["w1"])
		}
		before := queriesServed(t, f.workers["w2"])
		const infos = `lakehouse_requests_total{method="GetFlightInfo"}`
		infosBefore := metricValue(t, f.control, infos)
		want := admin(embedded, local, "query", queries[1], "-O", "csv", "--ref", "main")
		got := admin(f.keys.client, map[string]string{envAddr: f.addr, envAPIKey: f.readerKey}, "query", queries[1], "-O", "csv", "--ref", "main")
		if got != want {
			t.Errorf("after the kill:\n%s\nembedded:\n%s", got, want)
		}
		if n := queriesServed(t, f.workers["w2"]); n != before+1 {
			t.Errorf("w2 served %d queries after w1's kill, want 1", n-before)
		}
		// Placed on w1 first, the query was asked for again.
		if n := metricValue(t, f.control, infos); n != infosBefore+2 {
			t.Errorf("the client asked for the query %d times, want 2 (once placed on the dead w1, then elsewhere)", n-infosBefore)
		}
	})
}

// flightInfo asks the control plane for a query's FlightInfo.
func flightInfo(t *testing.T, f *fleetTest, q flight.QueryCommand) *arrowflight.FlightInfo {
	t.Helper()
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd, _ := json.Marshal(q)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+f.readerKey)
	info, err := arrowflight.NewFlightServiceClient(conn).GetFlightInfo(ctx, &arrowflight.FlightDescriptor{Type: arrowflight.DescriptorCMD, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// doGet reads a ticket's stream from addr to its end.
func doGet(t *testing.T, addr string, ticket []byte) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := arrowflight.NewFlightServiceClient(conn).DoGet(context.Background(), &arrowflight.Ticket{Ticket: ticket})
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// ticketKey is the fleet's ticket key, as a worker gets it: it registers
// a worker w9 at an address that answers nothing, so a test takes the key
// once the fleet ran what it needs.
func (f *fleetTest) ticketKey(t *testing.T) []byte {
	t.Helper()
	wc, err := flight.Dial(f.addr, flight.DialOptions{APIKey: f.workerKey})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	lease, err := wc.RegisterWorker(context.Background(), fleet.Registration{Name: "w9", Instance: "0123456789abcdef",
		Version: Version, Addr: "127.0.0.1:1", Cores: 1, Launcher: "process"})
	if err != nil {
		t.Fatal(err)
	}
	return mustHex(t, lease.TicketKey)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) == 0 {
		t.Fatalf("ticket key %q: %v", s, err)
	}
	return b
}
