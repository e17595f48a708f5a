package flight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"google.golang.org/grpc"
)

// FetchOptions configure FetchIntermediate.
type FetchOptions struct {
	// CAFile, for grpc+tls:// locations, is a PEM file of the CA that
	// signed the worker's certificate (default: the system's roots).
	CAFile string
	// APIKey is sent with the DoGet: a worker's key, for the
	// intermediates its control plane holds (a worker's data plane takes
	// none and ignores it).
	APIKey string
	// Spares, if set, gives the fetch a spare file to write over (see
	// Spares).
	Spares *Spares
}

// FetchIntermediate reads the intermediate a handoff ticket grants from
// the data plane at location (http://host:port, host:port,
// grpc://host:port or grpc+tls://host:port; see DataLocation) into a
// local Arrow IPC file at dst, usually in /dev/shm. Over http: the file
// as it lies on the worker, spliced from the socket into dst
// (handoff_http.go). Over gRPC, a DoGet: each message's body goes from
// the transport's buffers straight into the file, once its header is
// checked against the schema (arrowipc.StreamFile). Either way dst
// appears only once complete and its footer, batch headers and offsets
// are checked; a child then reads it as a local intermediate, which
// validates the values.
//
// A process fetches each dst once: callers asking for a dst that is being
// fetched wait for that fetch, and a dst already there is taken as
// fetched (name it after the run and model). A caller that gives up
// (ctx ends) leaves the fetch to the others; the last one to leave stops
// it.
//
// Errors are the worker's (errdefs.ErrNotFound for an intermediate it does
// not hold, an expired ticket or one of another worker or lease;
// errdefs.ErrPermissionDenied for a forged one), errdefs.ErrUnavailable
// when the worker cannot be reached, errdefs.ErrInvalidArgument when what
// it sent is not a valid table, and those of writing dst.
func FetchIntermediate(ctx context.Context, location string, ticket []byte, dst string, opts FetchOptions) error {
	return fetches.do(ctx, dst, func(ctx context.Context) error {
		return fetchIntermediate(ctx, location, ticket, dst, opts)
	})
}

// fetches are the fetches of the process, by destination.
var fetches = &fetchGroup{calls: map[string]*fetchCall{}}

func fetchIntermediate(ctx context.Context, location string, ticket []byte, dst string, opts FetchOptions) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if strings.HasPrefix(location, "http://") {
		// A data plane without TLS (DataLocation): the file over HTTP,
		// else (it answered no HTTP) a DoGet.
		tmp, err := fetchHTTP(ctx, location, ticket, dst, opts.Spares)
		if err == nil {
			if err = os.Rename(tmp, dst); err != nil {
				os.Remove(tmp) // a spare too: it was taken
			}
		}
		if !errors.Is(err, errNoHTTP) {
			return err
		}
		location = strings.TrimPrefix(location, "http://")
	}
	c, err := Dial(location, DialOptions{CAFile: opts.CAFile, APIKey: opts.APIKey})
	if err != nil {
		return err
	}
	defer c.Close()
	// Each message comes within stallTimeout, the first one too: a holder
	// stopped or cut off midway fails the fetch rather than holding it.
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	stalled := func(err error) error {
		if ctx.Err() == nil && errors.Is(context.Cause(sctx), errStalled) {
			return errdefs.WithHint(errdefs.ErrUnavailable, "retry: the worker may have stopped or been cut off",
				"the data plane at %s sent nothing of the intermediate for %s", c.Addr(), stallTimeout)
		}
		return c.err(err)
	}
	stream, err := c.fc.DoGet(c.callContext(sctx), &flight.Ticket{Ticket: ticket})
	if err != nil {
		return stalled(err)
	}
	// Written as tmp, checked, then renamed to dst. What a fetch killed
	// midway left is this process's to remove: only it fetches dst. A
	// spare is written where it lies, in the spares' folder.
	tmp := dst + ".fetch"
	os.Remove(tmp)
	var w *arrowipc.StreamFile
	// A spare is taken once the holder's answer begins (its header gives
	// the size: Spares takes the one that holds it), not for a refusal.
	if md, err := stream.Header(); err != nil || md == nil {
		// The stream ended without an answer: receive returns why.
	} else if sp, ok := opts.Spares.take(dst, intermediateSize(md)); ok {
		if w, err = arrowipc.ReuseStreamFile(sp); err == nil {
			tmp = sp
		} else {
			os.Remove(sp)
		}
	}
	if w == nil {
		if w, err = arrowipc.CreateStreamFile(tmp); err != nil {
			return err
		}
	}
	if err := receive(stream, w, func() { watchdog.Reset(stallTimeout) }); err != nil {
		w.Abort()
		if errdefs.Is(err, errdefs.ErrInvalidArgument) {
			return fmt.Errorf("intermediate from %s: %w", c.Addr(), err)
		}
		return stalled(err)
	}
	watchdog.Stop()
	if _, err := w.Close(ctx); err != nil {
		return fmt.Errorf("intermediate from %s into %s: %w", c.Addr(), dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// errStalled is the cause of a DoGet cut for sending nothing within
// stallTimeout.
var errStalled = errors.New("the intermediate's stream stalled")

// receive writes the messages of a DoGet stream into w as they arrive,
// their bodies straight from the transport's buffers, calling progress
// after each. A message w refuses is an error of class InvalidArgument;
// others are the stream's.
func receive(stream grpc.ClientStream, w *arrowipc.StreamFile, progress func()) error {
	var d receivedData
	defer d.free()
	for {
		err := stream.RecvMsg(&d)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		progress()
		if len(d.header) > 0 || d.bodyLen > 0 { // else app metadata only
			if err := w.Write(d.header, d.body, d.bodyLen); err != nil {
				return err
			}
		}
		d.free()
	}
}

// fetchGroup runs one fetch per key at a time (a per-process single
// flight): callers of a key being fetched wait for that fetch and share
// its result.
type fetchGroup struct {
	mu    sync.Mutex
	calls map[string]*fetchCall
}

type fetchCall struct {
	done chan struct{}
	err  error
	// waiters are the callers waiting; the last to leave early cancels the
	// fetch, and marks it abandoned so that a later caller starts anew.
	waiters   int
	abandoned bool
	cancel    context.CancelFunc
}

// do runs fn once for all the callers of key that come while it runs. fn
// runs on a context of its own, cancelled when every caller has gone.
func (g *fetchGroup) do(ctx context.Context, key string, fn func(context.Context) error) error {
	for {
		g.mu.Lock()
		c, ok := g.calls[key]
		if ok && c.abandoned {
			// A fetch nobody waits for is winding down: start anew once
			// it has.
			g.mu.Unlock()
			select {
			case <-c.done:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !ok {
			c = g.start(ctx, key, fn)
		}
		c.waiters++
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			g.mu.Lock()
			if c.waiters--; c.waiters == 0 {
				c.abandoned = true
				c.cancel()
			}
			g.mu.Unlock()
			return ctx.Err()
		}
	}
}

// start runs fn for key; g.mu is held.
func (g *fetchGroup) start(ctx context.Context, key string, fn func(context.Context) error) *fetchCall {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &fetchCall{done: make(chan struct{}), cancel: cancel}
	g.calls[key] = c
	go func() {
		err := fn(fctx)
		cancel()
		g.mu.Lock()
		delete(g.calls, key)
		c.err = err
		g.mu.Unlock()
		close(c.done)
	}()
	return c
}
