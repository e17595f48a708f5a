package flight

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestSplitListener: connections go to the side of their first bytes,
// which are read again there; one side closed, the other still accepts;
// both closed, the port is.
func TestSplitListener(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcL, httpL := splitListener(lis)
	// serve answers each connection of l with the first line it reads,
	// prefixed with name.
	serve := func(name string, l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 64)
				n, _ := io.ReadAtLeast(c, b, 6)
				c.Write(append([]byte(name+":"), b[:n]...)) //nolint:errcheck
			}()
		}
	}
	go serve("grpc", grpcL)
	go serve("http", httpL)
	ask := func(send string) string {
		t.Helper()
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		if _, err := c.Write([]byte(send)); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for send, want := range map[string]string{
		"PRI * HTTP/2.0":  "grpc:PRI * HTTP/2.0",
		"GET / HTTP/1.1":  "http:GET / HTTP/1.1",
		"\x16\x03\x01xyz": "http:\x16\x03\x01xyz", // what is not HTTP/2 goes to the HTTP side, which refuses it
	} {
		if got := ask(send); got != want {
			t.Errorf("sent %q: answered %q, want %q", send, got, want)
		}
	}
	if grpcL.Addr().String() != lis.Addr().String() || httpL.Addr().String() != lis.Addr().String() {
		t.Errorf("addresses %s, %s, want %s", grpcL.Addr(), httpL.Addr(), lis.Addr())
	}
	grpcL.Close()
	if got := ask("GET /x HTTP/1.1"); got != "http:GET /x HTTP/1.1" {
		t.Errorf("with the gRPC side closed: %q", got)
	}
	httpL.Close()
	if c, err := net.DialTimeout("tcp", lis.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the port still accepts with both sides closed")
	}
	if _, err := grpcL.Accept(); err == nil {
		t.Error("a closed side accepted")
	}
}
