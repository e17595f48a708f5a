package flight

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Work placed on workers, the control plane's side. Each worker keeps one
// work stream open (protocol_work.go): the hub holds the stream of each
// worker name, under the lease it was opened with, and gives tasks over
// it (Assign). The stream lives as long as its lease: the hub checks the
// lease with the registry while the stream is open, and a lease found
// dead, a stream that breaks, or a newer stream of the same worker ends
// the stream and every task of it with fleet.ErrWorkerLost. What the
// worker sends for a task the hub no longer waits for (it ended, or its
// stream did) is dropped: a partitioned worker's late results never reach
// a caller.
//
// Every queue is bounded: tasks wait for room in a stream's queue, and a
// task's events wait for its caller to take them; the worker's emit then
// blocks under gRPC's flow control rather than the control plane
// buffering without bound. A caller slow to take its events therefore
// slows the other tasks of the same worker too: onEvent must not wait for
// another task. Cancels and notes go ahead of tasks in a queue of their
// own: cancels are bounded by the tasks, notes by maxUrgent.

// WorkFleet is what a WorkHub needs of the fleet's registry:
// *fleet.Registry.
type WorkFleet interface {
	// Check returns nil if lease is the live lease of worker name; a dead
	// lease is errdefs.ErrFailedPrecondition, an unknown one
	// errdefs.ErrNotFound.
	Check(name, lease string) error
	// Timeout is how long a worker may go without a heartbeat.
	Timeout() time.Duration
}

var _ WorkFleet = (*fleet.Registry)(nil)

// Bounds of the hub's queues.
const (
	// streamQueue is how many tasks wait to be sent on one stream.
	streamQueue = 16
	// taskQueue is how many events (and the result) of one task wait for
	// its caller.
	taskQueue = 64
	// maxUrgent is how many cancels and notes wait to be sent on one
	// stream; a note beyond it is dropped.
	maxUrgent = 4096
	// maxCheckEvery is the longest wait between two checks of a stream's
	// lease.
	maxCheckEvery = 250 * time.Millisecond
)

// WorkHub gives tasks to the workers that opened a work stream on the
// control plane (Options.Work). It implements fleet.Assigner and is safe
// for concurrent use. A work stream is a call like any other to the
// server's GracefulStop, which waits for it until its timeout: Close the
// hub once the runs in flight have ended.
type WorkHub struct {
	fleet WorkFleet
	log   *slog.Logger
	ids   atomic.Uint64

	mu     sync.Mutex
	conns  map[string]*workConn
	closed bool
}

var _ fleet.Assigner = (*WorkHub)(nil)

// NewWorkHub returns a hub of the workers of f; log receives a line per
// stream opened and ended, and (at debug) what it refuses (nil:
// discarded).
func NewWorkHub(f WorkFleet, log *slog.Logger) *WorkHub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &WorkHub{fleet: f, log: log, conns: map[string]*workConn{}}
}

// workConn is one open work stream.
type workConn struct {
	worker, lease string
	// ctx ends with the stream; its cause wraps fleet.ErrWorkerLost.
	ctx context.Context
	end context.CancelCauseFunc
	// out are the tasks to send.
	out chan WorkMessage

	mu     sync.Mutex
	tasks  map[uint64]*pendingTask
	urgent []WorkMessage
	// wake tells the writer that urgent has messages.
	wake chan struct{}
}

// pendingTask is a task waiting for its result.
type pendingTask struct {
	// in are the task's events and then its result or error.
	in chan WorkMessage
	// gone is closed when the caller stopped waiting.
	gone chan struct{}
	// sent is set (under workConn.mu) when the writer sends the task: a
	// task not sent yet is dropped rather than cancelled.
	sent bool
}

// lost is the error of the tasks of a stream that ended for why (an
// errdefs error, whose class it keeps).
func lost(why error) error { return &lostError{why: why} }

// lostError is fleet.ErrWorkerLost, and why.
type lostError struct{ why error }

func (e *lostError) Error() string   { return fleet.ErrWorkerLost.Error() + ": " + e.why.Error() }
func (e *lostError) Unwrap() []error { return []error{fleet.ErrWorkerLost, e.why} }

// why is the reason a stream ended (nil if it did not).
func (c *workConn) why() error {
	var l *lostError
	if errors.As(context.Cause(c.ctx), &l) {
		return l.why
	}
	return context.Cause(c.ctx)
}

// Connected returns the lease under which worker has a work stream open.
func (h *WorkHub) Connected(worker string) (lease string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.conns[worker]; c != nil && c.ctx.Err() == nil {
		return c.lease, true
	}
	return "", false
}

// Close ends every work stream (their tasks end with
// fleet.ErrWorkerLost) and refuses new ones: the control plane is
// shutting down.
func (h *WorkHub) Close() {
	h.mu.Lock()
	h.closed = true
	conns := h.conns
	h.conns = map[string]*workConn{}
	h.mu.Unlock()
	for _, c := range conns {
		c.end(lost(errdefs.WithHint(errdefs.ErrUnavailable, "the worker connects again when the control plane is back",
			"the control plane is shutting down")))
	}
}

// Assign runs task on worker under lease (see fleet.Assigner): it returns
// the result, an error wrapping fleet.ErrWorkerLost if the worker has no
// stream under lease or loses it first, the cause of ctx if ctx ends
// first (the worker is told to cancel the task), or the handler's error
// as the errdefs error it was.
func (h *WorkHub) Assign(ctx context.Context, worker, lease string, task json.RawMessage, onEvent func(event json.RawMessage)) (json.RawMessage, error) {
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	h.mu.Lock()
	c := h.conns[worker]
	h.mu.Unlock()
	if c == nil || c.lease != lease {
		return nil, lost(errdefs.WithHint(errdefs.ErrUnavailable, "place the task on another worker",
			"worker %s has no work stream open under lease %s", worker, shortID(lease)))
	}
	id := h.ids.Add(1)
	t := &pendingTask{in: make(chan WorkMessage, taskQueue), gone: make(chan struct{})}
	if !c.add(id, t) {
		return nil, context.Cause(c.ctx)
	}
	defer close(t.gone)
	defer c.forget(id, t)
	giveUp := func() error {
		if c.forget(id, t) {
			c.push(WorkMessage{Type: msgCancel, ID: id})
		}
		return context.Cause(ctx)
	}
	select {
	case c.out <- WorkMessage{Type: msgTask, ID: id, Body: task}:
	case <-c.ctx.Done():
		return nil, context.Cause(c.ctx)
	case <-ctx.Done():
		return nil, giveUp()
	}
	// take handles one message, and reports whether it ended the task.
	take := func(m WorkMessage) (res json.RawMessage, done bool, err error) {
		switch m.Type {
		case msgEvent:
			if onEvent != nil {
				onEvent(m.Body)
			}
			return nil, false, nil
		case msgResult:
			return m.Body, true, nil
		}
		return nil, true, m.err()
	}
	for {
		select {
		case m := <-t.in:
			if res, done, err := take(m); done {
				return res, err
			}
		case <-ctx.Done():
			return nil, giveUp()
		case <-c.ctx.Done():
			// What came while the stream was alive counts.
			for {
				select {
				case m := <-t.in:
					if res, done, err := take(m); done {
						return res, err
					}
				default:
					return nil, context.Cause(c.ctx)
				}
			}
		}
	}
}

// Broadcast sends note to every connected worker, best effort.
func (h *WorkHub) Broadcast(note json.RawMessage) {
	h.mu.Lock()
	conns := make([]*workConn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		if !c.push(WorkMessage{Type: msgNote, Body: note}) {
			h.log.Warn("note not sent: the worker's queue is full, or its stream ended", "worker", c.worker)
		}
	}
}

// add enters a task, unless the stream ended.
func (c *workConn) add(id uint64, t *pendingTask) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return false
	}
	c.tasks[id] = t
	return true
}

// forget removes a task whose caller stops waiting, and reports whether
// it was sent to the worker (which should then cancel it).
func (c *workConn) forget(id uint64, t *pendingTask) (sent bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tasks[id] == t {
		delete(c.tasks, id)
	}
	return t.sent
}

// claim marks task id sent, and reports false if its caller stopped
// waiting (the task is not sent, and never cancelled).
func (c *workConn) claim(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tasks[id]
	if t == nil {
		return false
	}
	t.sent = true
	return true
}

// push queues a cancel or a note ahead of the tasks. It reports false if
// the queue is full (a note is dropped; cancels, one per task, always
// fit) or the stream ended.
func (c *workConn) push(m WorkMessage) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil || (m.Type == msgNote && len(c.urgent) >= maxUrgent) {
		return false
	}
	c.urgent = append(c.urgent, m)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// takeUrgent returns the queued cancels and notes.
func (c *workConn) takeUrgent() []WorkMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.urgent
	c.urgent = nil
	return u
}

// serve runs the work stream of one worker until it ends: the DoExchange
// of Options.Work. It returns the refusal of a stream it does not accept
// (a malformed command, a lease not alive, a hub closed), why the stream
// ended if the worker did not end it, and nil if it did.
func (h *WorkHub) serve(ctx context.Context, stream flight.FlightService_DoExchangeServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	cmd, err := parseWorkCommand(first)
	if err != nil {
		return err
	}
	if err := h.fleet.Check(cmd.Worker, cmd.Lease); err != nil {
		return err
	}
	// The stream's own end shows in read, which ends cctx with a cause
	// that wraps fleet.ErrWorkerLost.
	cctx, end := context.WithCancelCause(context.WithoutCancel(ctx))
	defer end(lost(errdefs.New(errdefs.ErrUnavailable, "the work stream of worker %s ended", cmd.Worker)))
	c := &workConn{worker: cmd.Worker, lease: cmd.Lease, ctx: cctx, end: end, out: make(chan WorkMessage, streamQueue),
		tasks: map[uint64]*pendingTask{}, wake: make(chan struct{}, 1)}
	if err := h.attach(c); err != nil {
		return err
	}
	defer h.detach(c)
	h.log.Info("worker took its work stream", "worker", c.worker, "lease", shortID(c.lease))
	if err := sendWork(stream, WorkMessage{Type: msgOpen}); err != nil {
		return err
	}
	go h.read(c, stream)
	go h.watch(c)
	err = h.write(c, stream)
	why := c.why()
	h.log.Info("work stream ended", "worker", c.worker, "lease", shortID(c.lease), "why", why)
	switch {
	case err != nil:
		return err
	case why == errClosedByWorker:
		return nil
	}
	return why
}

// errClosedByWorker ends a stream the worker closed.
var errClosedByWorker = errdefs.New(errdefs.ErrUnavailable, "the worker closed its work stream")

// attach makes c the stream of its worker, ending the one it replaces.
func (h *WorkHub) attach(c *workConn) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errdefs.WithHint(errdefs.ErrUnavailable, "connect again when the control plane is back",
			"the control plane is shutting down")
	}
	old := h.conns[c.worker]
	h.conns[c.worker] = c
	h.mu.Unlock()
	if old != nil {
		old.end(lost(errdefs.WithHint(errdefs.ErrFailedPrecondition, "the worker uses its new stream",
			"worker %s opened a new work stream under lease %s", c.worker, shortID(c.lease))))
	}
	return nil
}

// detach forgets c if it still is its worker's stream.
func (h *WorkHub) detach(c *workConn) {
	h.mu.Lock()
	if h.conns[c.worker] == c {
		delete(h.conns, c.worker)
	}
	h.mu.Unlock()
}

// write sends what is queued on c until c ends; it returns the error of
// a send that failed.
func (h *WorkHub) write(c *workConn, stream flight.FlightService_DoExchangeServer) error {
	for {
		var batch []WorkMessage
		select {
		case <-c.ctx.Done():
			return nil
		case <-c.wake:
			batch = c.takeUrgent()
		case m := <-c.out:
			// Cancels and notes queued meanwhile go first: none is of
			// this task, whose cancel can come only once it is claimed.
			batch = c.takeUrgent()
			if c.claim(m.ID) {
				batch = append(batch, m)
			}
		}
		for _, m := range batch {
			if err := sendWork(stream, m); err != nil {
				c.end(lost(errdefs.New(errdefs.ErrUnavailable, "the work stream of worker %s broke: %v", c.worker, err)))
				return err
			}
		}
	}
}

// read receives what the worker sends and hands it to the tasks waiting,
// until the stream ends.
func (h *WorkHub) read(c *workConn, stream flight.FlightService_DoExchangeServer) {
	for {
		fd, err := stream.Recv()
		if err == io.EOF || status.Code(err) == codes.Canceled {
			c.end(lost(errClosedByWorker))
			return
		}
		if err != nil {
			c.end(lost(errdefs.New(errdefs.ErrUnavailable, "the work stream of worker %s broke: %v", c.worker, err)))
			return
		}
		var m WorkMessage
		if err := json.Unmarshal(fd.GetAppMetadata(), &m); err != nil {
			c.end(lost(errdefs.New(errdefs.ErrInvalidArgument, "worker %s sent a malformed message: %v", c.worker, err)))
			return
		}
		switch m.Type {
		case msgEvent:
		case msgResult, msgError:
			// The lease again, at the last moment: the result of a worker
			// whose lease died is not taken, even before watch notices.
			if err := h.fleet.Check(c.worker, c.lease); err != nil {
				h.log.Debug("result refused: the lease is dead", "worker", c.worker, "task", m.ID, "err", err)
				c.end(lost(err))
				return
			}
		default:
			c.end(lost(errdefs.New(errdefs.ErrInvalidArgument, "worker %s sent a message of unknown type %q", c.worker, m.Type)))
			return
		}
		h.deliver(c, m)
	}
}

// deliver hands m to its task; a message for a task nobody waits for is
// dropped.
func (h *WorkHub) deliver(c *workConn, m WorkMessage) {
	c.mu.Lock()
	t := c.tasks[m.ID]
	if m.Type != msgEvent {
		delete(c.tasks, m.ID)
	}
	alive := c.ctx.Err() == nil
	c.mu.Unlock()
	if t == nil || !alive {
		h.log.Debug("message refused: no such task waits", "worker", c.worker, "task", m.ID, "type", m.Type)
		return
	}
	select {
	case t.in <- m:
	case <-t.gone:
	case <-c.ctx.Done():
	}
}

// watch checks c's lease every min(timeout/4, maxCheckEvery) until c ends,
// and ends c when the lease died.
func (h *WorkHub) watch(c *workConn) {
	every := min(h.fleet.Timeout()/4, maxCheckEvery)
	if every <= 0 {
		every = maxCheckEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			if err := h.fleet.Check(c.worker, c.lease); err != nil {
				c.end(lost(err))
				return
			}
		}
	}
}

// sendWork sends one message of the work stream.
func sendWork(stream interface {
	Send(*flight.FlightData) error
}, m WorkMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return stream.Send(&flight.FlightData{AppMetadata: b})
}

// parseWorkCommand reads the command of a work stream's first message.
func parseWorkCommand(fd *flight.FlightData) (WorkCommand, error) {
	var cmd WorkCommand
	desc := fd.GetFlightDescriptor()
	if desc == nil || desc.GetType() != flight.DescriptorCMD {
		return cmd, errdefs.WithHint(errdefs.ErrInvalidArgument, "open it with flight.ServeWork",
			"the first message of a work stream carries no command descriptor")
	}
	if err := decode(WorkProtocol, desc.GetCmd(), &cmd); err != nil {
		return cmd, err
	}
	if cmd.Protocol != WorkProtocol {
		return cmd, errdefs.WithHint(errdefs.ErrInvalidArgument, "run the same lakehouse version on the workers and the control plane",
			"the work stream speaks %q, and this control plane %q", cmd.Protocol, WorkProtocol)
	}
	if err := fleet.ValidName(cmd.Worker); err != nil {
		return cmd, err
	}
	if cmd.Lease == "" {
		return cmd, errdefs.WithHint(errdefs.ErrInvalidArgument, "register the worker first",
			"the work stream of worker %s names no lease", cmd.Worker)
	}
	return cmd, nil
}

// shortID is the first 8 characters of an id, for messages.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
