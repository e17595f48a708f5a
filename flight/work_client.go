package flight

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
)

// Work placed on workers, the worker's side: a WorkServer keeps a work
// stream open on the control plane under the worker's current lease, and
// runs each task it is given in a goroutine of its own. Nothing of a task
// outlives its stream: when the stream breaks, every task is cancelled
// and waited for before the worker connects again.

// Bounds of the worker's reconnections and queue.
const (
	// workRetryMin is the first wait before opening a stream again; it
	// doubles up to the client's DialOptions.RetryDelay (default
	// workRetryMax).
	workRetryMin = 50 * time.Millisecond
	workRetryMax = 5 * time.Second
	// leasePoll is how often a worker without a lease looks again.
	leasePoll = 50 * time.Millisecond
	// workerQueue is how many events and results wait to be sent: a task
	// that emits faster than the control plane reads waits in emit.
	workerQueue = 64
)

// WorkServer runs the tasks the control plane gives a worker. Build it
// with NewWorkServer and call Run once.
type WorkServer struct {
	c      *Client
	lease  func() (name, lease string, ok bool)
	handle fleet.WorkHandler
	onNote func(json.RawMessage)
	// Log receives a line per stream lost (nil: discarded). Set it before
	// Run.
	Log *slog.Logger

	running atomic.Int64
}

// NewWorkServer returns the work server of a worker whose client of the
// control plane is c (dialled with the worker's key). lease returns the
// worker's name and current lease (ok false while it has none: the
// server waits); handle runs each task; onNote receives the notes of the
// control plane, in order, from one goroutine (nil: dropped), and must
// not block for long.
func NewWorkServer(c *Client, lease func() (name, lease string, ok bool), handle fleet.WorkHandler, onNote func(json.RawMessage)) *WorkServer {
	return &WorkServer{c: c, lease: lease, handle: handle, onNote: onNote}
}

// ServeWork runs a WorkServer until ctx ends: see NewWorkServer and Run.
func ServeWork(ctx context.Context, c *Client, lease func() (name, lease string, ok bool), handle fleet.WorkHandler, onNote func(json.RawMessage)) error {
	return NewWorkServer(c, lease, handle, onNote).Run(ctx)
}

// Running is how many tasks run now (the worker's load).
func (w *WorkServer) Running() int { return int(w.running.Load()) }

// Run takes tasks until ctx ends, then cancels the running tasks, waits
// for them and returns nil. It opens the work stream under the current
// lease, and opens it again whenever it breaks (the lease may have
// changed meanwhile), waiting a little longer each time it could not. It
// returns the error of a stream refused for good: a key that may not take
// work (errdefs.ErrPermissionDenied, errdefs.ErrUnauthenticated), or a
// control plane of another protocol (errdefs.ErrInvalidArgument).
func (w *WorkServer) Run(ctx context.Context) error {
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxWait := w.c.opts.RetryDelay
	if maxWait <= 0 {
		maxWait = workRetryMax
	}
	wait := workRetryMin
	for {
		name, lease, ok := w.lease()
		if !ok {
			if !sleep(ctx, leasePoll) {
				return nil
			}
			continue
		}
		opened, err := w.session(ctx, name, lease)
		if ctx.Err() != nil {
			return nil
		}
		if errdefs.Is(err, errdefs.ErrPermissionDenied) || errdefs.Is(err, errdefs.ErrUnauthenticated) ||
			errdefs.Is(err, errdefs.ErrInvalidArgument) {
			return err
		}
		if opened {
			wait = workRetryMin
		}
		log.Warn("work stream lost; opening it again", "err", err, "in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
		wait = min(wait*2, maxWait)
	}
}

// sleep waits d, or less if ctx ends (then it reports false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// session runs one work stream until it breaks or ctx ends, and returns
// once every task it started has returned. opened reports whether the
// control plane accepted the stream.
func (w *WorkServer) session(ctx context.Context, name, lease string) (opened bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := w.c.fc.DoExchange(w.c.callContext(sctx))
	if err != nil {
		return false, w.c.err(err)
	}
	cmd, err := json.Marshal(WorkCommand{Protocol: WorkProtocol, Worker: name, Lease: lease})
	if err != nil {
		return false, err
	}
	if err := stream.Send(&flight.FlightData{FlightDescriptor: &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd}}); err != nil {
		// The server ended the stream: Recv says why.
		if _, rerr := stream.Recv(); rerr != nil && rerr != io.EOF {
			return false, w.c.err(rerr)
		}
		return false, w.c.err(err)
	}

	out := make(chan WorkMessage, workerQueue)
	var (
		writer, tasks sync.WaitGroup
		mu            sync.Mutex
		running       = map[uint64]context.CancelFunc{}
	)
	writer.Add(1)
	go func() {
		defer writer.Done()
		for {
			select {
			case <-sctx.Done():
				return
			case m := <-out:
				// A send fails only when the stream ended: Recv then
				// returns why, and ends the session.
				if sendWork(stream, m) != nil {
					return
				}
			}
		}
	}()
	// Whatever ends the stream, no task outlives it.
	defer func() {
		cancel()
		tasks.Wait()
		writer.Wait()
	}()

	start := func(id uint64, task json.RawMessage) {
		tctx, tcancel := context.WithCancel(sctx)
		mu.Lock()
		if _, dup := running[id]; dup {
			mu.Unlock()
			tcancel()
			return
		}
		running[id] = tcancel
		mu.Unlock()
		w.running.Add(1)
		tasks.Add(1)
		go func() {
			defer tasks.Done()
			defer w.running.Add(-1)
			defer func() {
				mu.Lock()
				delete(running, id)
				mu.Unlock()
				tcancel()
			}()
			emit := func(ev json.RawMessage) {
				select {
				case out <- WorkMessage{Type: msgEvent, ID: id, Body: ev}:
				case <-tctx.Done():
				}
			}
			res, err := w.handle(tctx, task, emit)
			if tctx.Err() != nil {
				// Cancelled: nobody waits for the result any more.
				return
			}
			m := WorkMessage{Type: msgResult, ID: id, Body: res}
			if err != nil {
				m = workErrorMessage(id, err)
			}
			select {
			case out <- m:
			case <-sctx.Done():
			}
		}()
	}

	for {
		fd, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				return opened, errdefs.New(errdefs.ErrUnavailable, "the control plane at %s ended the work stream", w.c.Addr())
			}
			return opened, w.c.err(err)
		}
		var m WorkMessage
		if err := json.Unmarshal(fd.GetAppMetadata(), &m); err != nil {
			return opened, errdefs.New(errdefs.ErrInternal, "the control plane at %s sent a malformed work message: %v", w.c.Addr(), err)
		}
		switch m.Type {
		case msgOpen:
			opened = true
		case msgTask:
			start(m.ID, m.Body)
		case msgCancel:
			mu.Lock()
			if f := running[m.ID]; f != nil {
				f()
			}
			mu.Unlock()
		case msgNote:
			if w.onNote != nil {
				w.onNote(m.Body)
			}
		}
	}
}
