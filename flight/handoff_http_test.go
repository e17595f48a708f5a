package flight

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// serveRaw answers every connection on a loopback port with fn (the
// request read up to its blank line first) and returns the port's
// address.
func serveRaw(t *testing.T, fn func(c net.Conn)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var req []byte
				buf := make([]byte, 1)
				for !bytes.HasSuffix(req, []byte("\r\n\r\n")) {
					if _, err := c.Read(buf); err != nil {
						return
					}
					req = append(req, buf[0])
				}
				fn(c)
			}()
		}
	}()
	return lis.Addr().String()
}

// TestHandoffHTTPHostileSender: whatever a data plane answers over HTTP,
// the fetch fails with a class that says what went wrong and leaves no
// file (shmDir checks for leftovers), or writes a file that reads back.
func TestHandoffHTTPHostileSender(t *testing.T) {
	defer func(d time.Duration) { stallTimeout = d }(stallTimeout)
	stallTimeout = 200 * time.Millisecond
	schema := arrow.NewSchema(handoffSchema.Fields()[:2], nil)
	src := filepath.Join(shmDir(t), "good.arrow")
	writeIntermediate(t, src, schema, []string{`[{"id": 1, "name": "abc"}, {"id": 2, "name": "def"}]`})
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// badOffsets is the good file with the name column's offsets [0, 3, 6]
	// made to run past the data.
	badOffsets := bytes.Clone(good)
	want := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(make([]byte, 4), 3), 6)
	at := bytes.Index(badOffsets, want)
	if at < 0 {
		t.Fatal("no offsets [0, 3, 6] in the file")
	}
	binary.LittleEndian.PutUint32(badOffsets[at+8:], 1<<20)
	var stream bytes.Buffer
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(`[{"id": 1, "name": "abc"}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	sw := ipc.NewWriter(&stream, ipc.WithSchema(schema))
	if err := sw.Write(rec); err != nil || sw.Close() != nil {
		t.Fatal(err)
	}
	answer := func(status, ctype string, body []byte, length int) func(net.Conn) {
		return func(c net.Conn) {
			h := "HTTP/1.1 " + status + "\r\nContent-Type: " + ctype + "\r\n"
			if length >= 0 {
				h += "Content-Length: " + strconv.Itoa(length) + "\r\n"
			} else {
				h += "Transfer-Encoding: chunked\r\n"
				body = append(append([]byte(strconv.FormatInt(int64(len(body)), 16)+"\r\n"), body...), "\r\n0\r\n\r\n"...)
			}
			c.Write(append([]byte(h+"\r\n"), body...)) //nolint:errcheck
		}
	}
	file := func(body []byte) func(net.Conn) { return answer("200 OK", arrowFileType, body, len(body)) }
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
		class error  // nil: the fetch succeeds
		msg   string // in the error
	}{
		{"valid", file(good), nil, ""},
		{"not Arrow", file([]byte("PAR1 not an Arrow file at all")), errdefs.ErrInvalidArgument, "not an Arrow IPC file"},
		{"a stream, not a file", file(stream.Bytes()), errdefs.ErrInvalidArgument, "Arrow IPC"},
		{"offsets past the data", file(badOffsets), errdefs.ErrInvalidArgument, "data buffer"},
		{"cut short", answer("200 OK", arrowFileType, good[:len(good)/2], len(good)), errdefs.ErrUnavailable, "stopped sending"},
		{"no length", answer("200 OK", arrowFileType, good, -1), errdefs.ErrInvalidArgument, "without its length"},
		{"another type", answer("200 OK", "text/html", good, len(good)), errdefs.ErrInvalidArgument, `sent "text/html"`},
		{"refused", answer("404 Not Found", "application/json", []byte(`{"error":"gone","hint":"run it again","class":"not_found"}`), 58),
			errdefs.ErrNotFound, "gone"},
		// Not a data plane's answer: the fetch tries a DoGet there.
		{"an error page", answer("502 Bad Gateway", "text/html", []byte("<html>"), 6), errdefs.ErrUnavailable, ""},
		{"no HTTP", func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH\r\n")) }, errdefs.ErrUnavailable, ""}, //nolint:errcheck
		{"silent", func(net.Conn) { time.Sleep(2 * time.Second) }, errdefs.ErrUnavailable, "did not answer within 200ms"},
		{"stalled", func(c net.Conn) {
			answer("200 OK", arrowFileType, good[:len(good)/2], len(good))(c)
			time.Sleep(2 * time.Second) // then closes: the fetch gave up before
		}, errdefs.ErrUnavailable, "sent less than 4 MiB of the intermediate in 200ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveRaw(t, tc.serve)
			dst := filepath.Join(shmDir(t), "in.arrow")
			err := FetchIntermediate(context.Background(), "http://"+addr, []byte("any"), dst, FetchOptions{})
			if tc.class == nil {
				if err != nil {
					t.Fatal(err)
				}
				readIntermediate(t, dst)
				return
			}
			if !errdefs.Is(err, tc.class) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %s containing %q", err, errdefs.ClassName(tc.class), tc.msg)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Fatalf("a refused answer left %s: %v", dst, err)
			}
		})
	}
}

// TestHandoffHTTPRequests: the data plane's HTTP side answers a plain
// HTTP client: the intermediate as an Arrow IPC file that arrow-go's file
// reader reads, and a JSON error for anything else; gRPC goes on on the
// same port.
func TestHandoffHTTPRequests(t *testing.T) {
	key := []byte("fleet key")
	a := serveHandoffWorker(t, &joinedWorker{name: "a", lease: "la", key: key})
	schema := arrow.NewSchema(handoffSchema.Fields()[:2], nil)
	_, want, tkt := holdParent(t, a, key, schema, []string{`[{"id": 1, "name": "Ada"}, {"id": null, "name": null}]`})
	url := "http://" + a.addr + IntermediatePath + base64.RawURLEncoding.EncodeToString(tkt)
	hc := &http.Client{Timeout: 10 * time.Second}

	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != arrowFileType {
		t.Fatalf("%s %q: %v", resp.Status, resp.Header.Get("Content-Type"), err)
	}
	r, err := ipc.NewFileReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.NumRecords() != len(want) {
		t.Fatalf("%d batches", r.NumRecords())
	}
	got, err := r.RecordBatch(0)
	if err != nil || !array.RecordEqual(got, want[0]) {
		t.Fatalf("batch: %v %v", got, err)
	}
	r.Close()

	for _, tc := range []struct {
		name, method, url string
		status            int
		msg               string
	}{
		{"HEAD", http.MethodHead, url, 200, ""},
		{"POST", http.MethodPost, url, 400, "method POST is not allowed"},
		{"another path", http.MethodGet, "http://" + a.addr + "/metrics", 404, "serves intermediates only"},
		{"not base64", http.MethodGet, "http://" + a.addr + IntermediatePath + "%21%21", 400, "malformed intermediate ticket"},
		{"not a ticket", http.MethodGet, "http://" + a.addr + IntermediatePath + base64.RawURLEncoding.EncodeToString([]byte(`{"query":"x"}`)), 400, "malformed"},
		{"forged", http.MethodGet, "http://" + a.addr + IntermediatePath + base64.RawURLEncoding.EncodeToString(
			bytes.Replace(tkt, []byte(`"sig":"`), []byte(`"sig":"00`), 1)), 403, "not signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s: %s", resp.Status, b)
			}
			if tc.msg == "" {
				if n := resp.Header.Get("Content-Length"); n != strconv.Itoa(len(body)) {
					t.Fatalf("Content-Length %s, want %d", n, len(body))
				}
				return
			}
			var he httpError
			if err := json.Unmarshal(b, &he); err != nil || !strings.Contains(he.Error, tc.msg) {
				t.Fatalf("answer %s, want an error containing %q", b, tc.msg)
			}
		})
	}
	// gRPC on the same port.
	dst := filepath.Join(shmDir(t), "in.arrow")
	if err := FetchIntermediate(context.Background(), "grpc://"+a.addr, tkt, dst, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	// A connection that says nothing holds nobody else up.
	idle, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := FetchIntermediate(context.Background(), "http://"+a.addr, tkt, filepath.Join(filepath.Dir(dst), "in2.arrow"), FetchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestHandoffHTTPSpare: a fetch over HTTP writes over a spare, longer
// than the intermediate, and cuts it to size.
func TestHandoffHTTPSpare(t *testing.T) {
	key := []byte("fleet key")
	a := serveHandoffWorker(t, &joinedWorker{name: "a", lease: "la", key: key})
	src, want, tkt := holdParent(t, a, key, handoffSchema, handoffBatches)
	dir := filepath.Dir(src)
	sp, err := NewSpares(filepath.Join(dir, "spares"), 1<<30, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	old := filepath.Join(dir, "old.arrow")
	if err := os.WriteFile(old, bytes.Repeat([]byte{0xff}, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	sp.Put(old)
	dst := filepath.Join(dir, "in.arrow")
	if err := FetchIntermediate(context.Background(), "http://"+a.addr, tkt, dst, FetchOptions{Spares: sp}); err != nil {
		t.Fatal(err)
	}
	got, _ := readIntermediate(t, dst)
	st, err := os.Stat(dst)
	srcSt, err2 := os.Stat(src)
	if err != nil || err2 != nil || st.Size() != srcSt.Size() || len(got) != len(want) || !array.RecordEqual(got[1], want[1]) {
		t.Fatalf("fetched over a spare: %d bytes (want %d), %d batches: %v %v", st.Size(), srcSt.Size(), len(got), err, err2)
	}
}

// TestHandoffHTTPFallback: where something other than a data plane
// answers HTTP/1.1 on the port (a proxy that passes gRPC only), the fetch
// gets the intermediate with a DoGet there.
func TestHandoffHTTPFallback(t *testing.T) {
	key := []byte("fleet key")
	held := NewIntermediates()
	metrics := NewMetrics()
	srv := NewServer(Options{Version: "v9", Role: "worker", Placed: &joinedWorker{name: "a", lease: "la", key: key},
		Intermediates: held, Metrics: metrics})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcL, httpL := splitListener(lis)
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("<html>no such route</html>")) //nolint:errcheck
	})}
	go proxy.Serve(httpL)    //nolint:errcheck
	go srv.grpc.Serve(grpcL) //nolint:errcheck
	t.Cleanup(func() { srv.Stop(); proxy.Close() })
	a := &handoffWorker{addr: lis.Addr().String(), held: held, metrics: metrics}
	_, want, tkt := holdParent(t, a, key, handoffSchema, handoffBatches)
	dst := filepath.Join(shmDir(t), "in.arrow")
	if err := FetchIntermediate(context.Background(), "http://"+a.addr, tkt, dst, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := readIntermediate(t, dst)
	if len(got) != len(want) || !array.RecordEqual(got[1], want[1]) {
		t.Fatalf("fetched %v", got)
	}
	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	if n := metrics.requests["DoGetIntermediate"]; n != 1 {
		t.Fatalf("%d DoGets, want the fallback's one", n)
	}
}
