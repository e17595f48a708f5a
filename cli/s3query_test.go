package cli

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
)

// s3Proxy stands between the lakehouse and MinIO on an endpoint of its
// own: it records the range reads of data files and, when armed, stops
// MinIO and itself at the first one, as if the server went away in the
// middle of a query.
type s3Proxy struct {
	t    *testing.T
	srv  *miniotest.Server
	addr string
	rp   *httputil.ReverseProxy

	mu     sync.Mutex
	l      net.Listener
	hs     *http.Server
	armed  bool
	ranges []rangeRead
}

// rangeRead is one range GET of a data file.
type rangeRead struct {
	key        string // bucket-relative
	start, end int64  // inclusive end, as in the Range header
}

func startS3Proxy(t *testing.T, srv *miniotest.Server) *s3Proxy {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &s3Proxy{t: t, srv: srv, rp: httputil.NewSingleHostReverseProxy(target)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.stop)
	return p
}

// Endpoint is the proxy's URL, to configure as the S3 endpoint.
func (p *s3Proxy) Endpoint() string { return "http://" + p.addr }

func (p *s3Proxy) serve(l net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.l = l
	p.hs = &http.Server{Handler: http.HandlerFunc(p.handle)}
	go p.hs.Serve(l)
}

func (p *s3Proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hs != nil {
		p.hs.Close()
		p.hs = nil
	}
}

// restart serves again on the same address, with MinIO restarted.
func (p *s3Proxy) restart() {
	p.t.Helper()
	p.srv.Restart()
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(l)
}

func (p *s3Proxy) handle(w http.ResponseWriter, r *http.Request) {
	rng := r.Header.Get("Range")
	if r.Method == http.MethodGet && rng != "" && strings.Contains(r.URL.Path, "/data/") {
		key := strings.TrimPrefix(r.URL.Path, "/"+p.srv.Bucket+"/")
		var rr rangeRead
		if from, to, ok := strings.Cut(strings.TrimPrefix(rng, "bytes="), "-"); ok {
			rr.start, _ = strconv.ParseInt(from, 10, 64)
			rr.end, _ = strconv.ParseInt(to, 10, 64)
		}
		rr.key = key
		p.mu.Lock()
		p.ranges = append(p.ranges, rr)
		armed := p.armed
		p.armed = false
		p.mu.Unlock()
		if armed {
			p.srv.Stop()
			go p.stop() // not from inside a handler: Close waits for none, but keep it off this call
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			http.Error(w, "stopped", http.StatusBadGateway)
			return
		}
	}
	p.rp.ServeHTTP(w, r)
}

// takeRanges returns the range reads recorded since the last call.
func (p *s3Proxy) takeRanges() []rangeRead {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.ranges
	p.ranges = nil
	return out
}

func (p *s3Proxy) arm() {
	p.mu.Lock()
	p.armed = true
	p.mu.Unlock()
}

// footerStart is the offset of the Parquet footer of the object at key
// (its Thrift metadata, then the length and magic).
func footerStart(t *testing.T, srv *miniotest.Server, key string) int64 {
	t.Helper()
	head, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &srv.Bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	size := *head.ContentLength
	rng := "bytes=" + strconv.FormatInt(size-8, 10) + "-"
	out, err := srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &srv.Bucket, Key: &key, Range: &rng})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil || len(b) != 8 || string(b[4:]) != "PAR1" {
		t.Fatalf("the end of %s: %q %v", key, b, err)
	}
	return size - 8 - int64(binary.LittleEndian.Uint32(b))
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func rangeBytes(rs []rangeRead) int64 {
	var n int64
	for _, r := range rs {
		n += r.end - r.start + 1
	}
	return n
}

// proxiedS3Env is a lakehouseEnv whose warehouse is on MinIO behind p.
func proxiedS3Env(t *testing.T, p *s3Proxy, prefix string) *lakehouseEnv {
	t.Helper()
	return newLakehouseEnvWith(t, launchers.Process, "", map[string]string{
		envWarehouse: "s3://" + p.srv.Bucket + "/" + prefix, envS3Endpoint: p.Endpoint()})
}

// TestS3ExplainFetchesNoData: query --explain on an S3 warehouse reads the
// footers of the data files it plans and no other byte of them, says what
// the query would fetch, and leaves the query to fetch it.
func TestS3ExplainFetchesNoData(t *testing.T) {
	srv := miniotest.Start(t)
	p := startS3Proxy(t, srv)
	le := proxiedS3Env(t, p, "explain")
	q := "SELECT country, sum(usd) AS s FROM sales.transactions GROUP BY country ORDER BY country"
	p.takeRanges()
	out := le.mustLH("query", q, "--explain")
	if !strings.Contains(out, "  cache:    miss, would fetch ") {
		t.Errorf("explain on an empty cache:\n%s", out)
	}
	reads := p.takeRanges()
	if len(reads) == 0 {
		t.Fatal("explain read no footer")
	}
	starts := map[string]int64{}
	for _, r := range reads {
		if _, ok := starts[r.key]; !ok {
			starts[r.key] = footerStart(t, srv, r.key)
		}
		if r.start < starts[r.key] {
			t.Errorf("explain read bytes [%d, %d] of %s; its footer starts at %d", r.start, r.end, r.key, starts[r.key])
		}
	}
	le.mustLH("query", q, "-O", "csv")
	if reads := p.takeRanges(); len(reads) == 0 {
		t.Error("the query after explain fetched nothing")
	}
	if out := le.mustLH("query", q, "--explain"); !strings.Contains(out, "  cache:    hit, ") {
		t.Errorf("explain of a cached scan:\n%s", out)
	}
	if reads := p.takeRanges(); len(reads) != 0 {
		t.Errorf("explain of a cached scan read %v", reads)
	}
}

// TestS3StoppedMidQuery: MinIO goes away when a query starts fetching data
// files: the query fails as unavailable (exit 6) naming the endpoint, no
// output file appears and the cache holds nothing of it; with MinIO back,
// the same command writes the rows a local warehouse gives.
func TestS3StoppedMidQuery(t *testing.T) {
	srv := miniotest.Start(t)
	p := startS3Proxy(t, srv)
	le := proxiedS3Env(t, p, "midquery")
	want := newLakehouseEnvWith(t, launchers.Process, "", nil)
	q := "SELECT id, usd, country FROM sales.transactions WHERE usd > 100 ORDER BY id"
	out := filepath.Join(t.TempDir(), "rows.csv")
	args := []string{"query", q, "--out", out, "-O", "csv"}

	p.arm()
	_, errOut, code := le.lh(args...)
	if code != errdefs.ExitUnavailable || !strings.Contains(errOut, p.addr) {
		t.Fatalf("query with MinIO gone mid-query: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed query left its output: %v", err)
	}
	var ents []scancache.Entry
	mustJSON(t, le.mustLH("cache", "ls", "-O", "json"), &ents)
	for _, e := range ents {
		if e.Cached != 0 {
			t.Errorf("the failed query left %d cached bytes of %s", e.Cached, e.Key)
		}
	}

	p.restart()
	le.mustLH(args...)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if w := want.mustLH("query", q, "-O", "csv"); string(got) != w {
		t.Errorf("after restart:\n%.500s\nwant\n%.500s", got, w)
	}
}

// TestS3QueryPrunesRowGroups: a query whose filter matches one row group
// of a data file fetches that row group's chunks only, and
// returns the rows a local warehouse returns.
func TestS3QueryPrunesRowGroups(t *testing.T) {
	srv := miniotest.Start(t)
	p := startS3Proxy(t, srv)
	src := filepath.Join(t.TempDir(), "big.parquet")
	db, err := duckdb.Open(duckdb.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	// DuckDB writes row groups of 122880 rows; the import keeps them.
	err = db.Exec(`COPY (SELECT i AS id, i % 1000 AS v FROM range(2500000) t(i)) TO ` + duckdb.Literal(src) + ` (FORMAT parquet)`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	le := proxiedS3Env(t, p, "prune")
	local := newLakehouseEnvWith(t, launchers.Process, "", nil)
	for _, e := range []*lakehouseEnv{le, local} {
		e.mustLH("table", "import", "sales.big", "--from", src)
	}
	q := "SELECT count(*) AS n, sum(v) AS s FROM sales.big WHERE id BETWEEN 2200000 AND 2200999"
	out := le.mustLH("query", q, "--explain")
	if m := regexp.MustCompile(`(\d+) of (\d+) row groups pruned`).FindStringSubmatch(out); m == nil || m[2] == "1" ||
		mustAtoi(t, m[1]) != mustAtoi(t, m[2])-1 {
		t.Errorf("explain, want all row groups but one pruned:\n%s", out)
	}
	p.takeRanges()
	got := le.mustLH("query", q, "-O", "csv")
	if w := local.mustLH("query", q, "-O", "csv"); got != w {
		t.Errorf("pruned query: %q, want %q", got, w)
	}
	fetched := rangeBytes(p.takeRanges())
	// The unfiltered query fetches the rest of the two columns.
	le.mustLH("query", "SELECT count(*), sum(v) FROM sales.big WHERE id >= 0", "-O", "csv")
	whole := fetched + rangeBytes(p.takeRanges())
	t.Logf("the selective query fetched %d bytes; the columns are %d bytes", fetched, whole)
	if fetched == 0 || fetched*2 > whole {
		t.Errorf("the selective query fetched %d of %d bytes", fetched, whole)
	}
}
