package flight

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// splitListener shares one listener between gRPC and plain HTTP/1.1: a
// connection that opens with HTTP/2's preface ("PRI * HTTP/2.0…", what
// every gRPC client sends first) goes to the first listener returned,
// any other (an HTTP/1.1 request line) to the second. A worker's data
// plane serves its intermediates both ways on one port (handoff_http.go).
// The shared listener is closed once both returned listeners are.
func splitListener(lis net.Listener) (grpcL, httpL net.Listener) {
	s := &splitter{lis: lis, done: make(chan struct{})}
	s.queues[0] = &connQueue{s: s, conns: make(chan net.Conn), closed: make(chan struct{})}
	s.queues[1] = &connQueue{s: s, conns: make(chan net.Conn), closed: make(chan struct{})}
	go s.accept()
	return s.queues[0], s.queues[1]
}

// prefaceTimeout bounds how long a connection may take to send its first
// bytes before it is dropped (it holds no more than a goroutine meanwhile).
const prefaceTimeout = 10 * time.Second

type splitter struct {
	lis    net.Listener
	done   chan struct{} // closed when lis is
	queues [2]*connQueue // gRPC, HTTP/1.1

	mu      sync.Mutex
	nclosed int   // queues closed
	err     error // why accepting stopped
}

func (s *splitter) accept() {
	defer close(s.done)
	for delay := time.Duration(0); ; {
		c, err := s.lis.Accept()
		if err != nil {
			// Out of file descriptors, a connection aborted before it was
			// accepted: wait and go on, as net/http and gRPC do.
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() && !errors.Is(err, net.ErrClosed) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		delay = 0
		go s.route(c)
	}
}

// route reads the first bytes of c and hands it, those bytes still to
// be read, to the queue of its protocol.
func (s *splitter) route(c net.Conn) {
	var head [4]byte
	c.SetReadDeadline(time.Now().Add(prefaceTimeout)) //nolint:errcheck
	n, err := io.ReadFull(c, head[:])
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	if err != nil {
		c.Close()
		return
	}
	q := s.queues[1]
	if string(head[:n]) == "PRI " {
		q = s.queues[0]
	}
	select {
	case q.conns <- &peekedConn{Conn: c, head: head[:n]}:
	case <-q.closed:
		c.Close()
	case <-s.done:
		c.Close()
	}
}

// connQueue is one protocol's side of a splitListener.
type connQueue struct {
	s      *splitter
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	case <-q.s.done:
		q.s.mu.Lock()
		defer q.s.mu.Unlock()
		return nil, q.s.err
	}
}

// Close stops this side; the shared listener closes with the second side.
func (q *connQueue) Close() error {
	var err error
	q.once.Do(func() {
		close(q.closed)
		s := q.s
		s.mu.Lock()
		s.nclosed++
		last := s.nclosed == len(s.queues)
		s.mu.Unlock()
		if last {
			err = s.lis.Close()
		}
	})
	return err
}

func (q *connQueue) Addr() net.Addr { return q.s.lis.Addr() }

// peekedConn is a connection whose first bytes were read to route it:
// they are read again first.
type peekedConn struct {
	net.Conn
	head []byte
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// ReadFrom lets net/http send a file with sendfile(2) through the
// connection (*net.TCPConn's ReadFrom), as it does on a connection of
// its own.
func (c *peekedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
