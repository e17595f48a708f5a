package flight

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"google.golang.org/grpc/metadata"
)

// Intermediates across workers. A model's output on worker A (an Arrow IPC
// file in A's /dev/shm) is read by a child placed on worker B from A's
// data plane: the ticket (IntermediateTicket) names the run, the model and
// the worker holding the output, and is signed with the fleet's ticket
// key, as placed queries are. A data plane without TLS sends the file
// whole over HTTP (handoff_http.go); with TLS, and from the control
// plane, B asks with a DoGet, and A streams the file's record batch
// messages from its mapping without copying or decoding them (codec.go,
// streamFile); B writes their bodies from gRPC's buffers into a local IPC
// file, checking headers and offsets but not values (FetchIntermediate,
// handoff_fetch.go), which its child then reads, and validates, like any
// local intermediate. Object storage is never in the
// way.

// IntermediateKind is the Kind of every IntermediateTicket.
const IntermediateKind = "intermediate"

// IntermediateTicket is what a handoff ticket grants: the output of model
// Model in run Run, held by worker Worker under lease Lease, until
// Expires.
type IntermediateTicket struct {
	// Kind is IntermediateKind (SignIntermediate sets it).
	Kind  string `json:"kind"`
	Run   string `json:"run"`
	Model string `json:"model"`
	// Worker and Lease are the worker holding the output and its lease
	// then: another worker, or the same after it registered again, refuses
	// the ticket.
	Worker string `json:"worker"`
	Lease  string `json:"lease"`
	// Expires is when the ticket stops being honoured (the signer's clock:
	// keep clocks within a few seconds).
	Expires time.Time `json:"expires"`
}

// intermediateTicket is the part of a Ticket that carries a handoff: the
// JSON of an IntermediateTicket and its signature, in hex.
type intermediateTicket struct {
	Intermediate *signedIntermediate `json:"intermediate,omitempty"`
}

type signedIntermediate struct {
	Body json.RawMessage `json:"body"`
	Sig  string          `json:"sig"`
}

// intermediateDomain prefixes what the signature of a handoff ticket
// covers, so that no signature of one kind of ticket is valid for the
// other even under the same key.
const intermediateDomain = "lakehouse intermediate\n"

func intermediateMAC(key, body []byte) []byte {
	return mac(key, append([]byte(intermediateDomain), body...))
}

// SignIntermediate encodes t as a signed Flight ticket of a worker's data
// plane.
func SignIntermediate(key []byte, t IntermediateTicket) ([]byte, error) {
	t.Kind = IntermediateKind
	body, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	sig := hex.EncodeToString(intermediateMAC(key, body))
	return json.Marshal(intermediateTicket{Intermediate: &signedIntermediate{Body: body, Sig: sig}})
}

// VerifyIntermediate checks a handoff ticket's signature under key and its
// expiry at now, and decodes it. A bad signature is
// errdefs.ErrPermissionDenied, an expired ticket errdefs.ErrNotFound.
func VerifyIntermediate(key []byte, body json.RawMessage, sig string, now time.Time) (IntermediateTicket, error) {
	var t IntermediateTicket
	want, err := hex.DecodeString(sig)
	if err != nil || len(key) == 0 || !hmac.Equal(want, intermediateMAC(key, body)) {
		return t, errdefs.WithHint(errdefs.ErrPermissionDenied, "ask the control plane for a ticket of the intermediate",
			"the intermediate's ticket is not signed by this worker's control plane")
	}
	if err := json.Unmarshal(body, &t); err != nil || t.Kind != IntermediateKind {
		return t, errdefs.New(errdefs.ErrInvalidArgument, "malformed intermediate in the ticket")
	}
	if now.After(t.Expires) {
		return t, errdefs.WithHint(errdefs.ErrNotFound, "ask the control plane for a new ticket",
			"the ticket of model %s of run %s expired at %s", t.Model, t.Run, t.Expires.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// Intermediates is the registry of the intermediates a worker holds: the
// IPC files of model outputs its data plane hands over (Options of the
// server). Whatever writes an output registers it, and forgets it before
// removing the file. A nil *Intermediates holds none. Its methods are
// safe for concurrent use.
//
// An intermediate is mapped (and its layout checked) at its first
// handoff, and the mapping kept until it is forgotten: a parent's output
// that children on several workers read is mapped once, not once per
// fetch (a mapping's page faults and its unmapping were a third of a
// handoff's sending CPU).
type Intermediates struct {
	mu    sync.Mutex
	files map[intermediateKey]*heldFile
}

type intermediateKey struct{ run, model string }

// heldFile is a registered intermediate: its path, the file there when
// registered and, once handed over, the registry's reference to its
// mapping.
type heldFile struct {
	path string
	file os.FileInfo // nil: none was there
	m    *mapping
}

// NewIntermediates returns an empty registry.
func NewIntermediates() *Intermediates {
	return &Intermediates{files: map[intermediateKey]*heldFile{}}
}

// Register makes the output of model in run, the complete Arrow IPC file
// at path, available to handoff tickets. The file must not change while
// it is registered: it is streamed from a read-only mapping, kept until
// it is forgotten (a file removed from its path unforgotten is still
// handed over). Registering another file for the same output (another
// path, or a new file renamed over the path) drops the mapping of the
// earlier one; another link of the same file keeps it.
func (r *Intermediates) Register(run, model, path string) {
	file, _ := os.Stat(path)
	r.mu.Lock()
	defer r.mu.Unlock()
	k := intermediateKey{run, model}
	if h := r.files[k]; h != nil {
		if h.file != nil && file != nil && os.SameFile(h.file, file) {
			h.path = path
			return
		}
		h.drop()
	}
	r.files[k] = &heldFile{path: path, file: file}
}

// Forget removes the output of model in run from the registry; streams
// already open read on to their end.
func (r *Intermediates) Forget(run, model string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := intermediateKey{run, model}
	if h := r.files[k]; h != nil {
		h.drop()
		delete(r.files, k)
	}
}

// ForgetRun removes every output of run (the run ended).
func (r *Intermediates) ForgetRun(run string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, h := range r.files {
		if k.run == run {
			h.drop()
			delete(r.files, k)
		}
	}
}

// drop releases the registry's reference to h's mapping; r.mu is held.
func (h *heldFile) drop() {
	if h.m != nil {
		h.m.release()
		h.m = nil
	}
}

// errGone is open's error for an intermediate not registered.
var errGone = errors.New("not registered")

// open returns a reference to the mapping of model's output in run, which
// the caller releases: the registry's, or a new one it keeps. A file gone
// from its path is fs.ErrNotExist, an output not registered errGone.
func (r *Intermediates) open(run, model string) (*mapping, error) {
	if r == nil {
		return nil, errGone
	}
	k := intermediateKey{run, model}
	r.mu.Lock()
	h := r.files[k]
	if h == nil {
		r.mu.Unlock()
		return nil, errGone
	}
	if m := h.m; m != nil {
		m.retain()
		r.mu.Unlock()
		return m, nil
	}
	path := h.path
	r.mu.Unlock()
	// Opened outside the lock: mapping a large file and checking its
	// layout takes a while, and other outputs' handoffs go on meanwhile.
	f, err := arrowipc.Open(path, arrowipc.Options{})
	if err != nil {
		return nil, err
	}
	m := &mapping{f: f}
	m.refs.Store(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch cur := r.files[k]; {
	case cur != h:
		// Forgotten or registered anew meanwhile: this stream's alone.
	case h.m != nil:
		// Another handoff mapped it first: share that one.
		h.m.retain()
		m.release()
		return h.m, nil
	default:
		m.retain() // the registry's
		h.m = m
	}
	return m, nil
}

// doGetIntermediate streams the intermediate a handoff ticket names.
func (s *Server) doGetIntermediate(ctx context.Context, si *signedIntermediate, stream flight.FlightService_DoGetServer) error {
	const method = "DoGetIntermediate"
	s.opts.Metrics.request(method)
	start := time.Now()
	err := s.serveIntermediate(ctx, si, stream)
	s.opts.Metrics.done(method, time.Since(start), err)
	if err != nil {
		s.opts.Log.Debug("intermediate not handed over", "err", err)
	}
	return err
}

func (s *Server) serveIntermediate(ctx context.Context, si *signedIntermediate, stream flight.FlightService_DoGetServer) error {
	if s.opts.Fleet != nil {
		// A control plane hands over the intermediates it holds itself.
		t, err := s.controlTicket(ctx, si)
		if err != nil {
			return err
		}
		return s.streamIntermediate(ctx, t, fleet.ControlName, stream)
	}
	t, name, err := s.workerTicket(si)
	if err != nil {
		return err
	}
	return s.streamIntermediate(ctx, t, name, stream)
}

// workerTicket checks a handoff ticket presented to this worker's data
// plane: signed by its control plane, not expired, naming this worker
// under its current lease. It returns the ticket and the worker's name.
func (s *Server) workerTicket(si *signedIntermediate) (IntermediateTicket, string, error) {
	if s.opts.Placed == nil {
		return IntermediateTicket{}, "", errdefs.WithHint(errdefs.ErrNotFound, "send the ticket to the worker that holds the intermediate",
			"this server (--role %s) holds no intermediates", s.opts.Role)
	}
	name, lease, key, ok := s.opts.Placed.Ticket()
	if !ok {
		return IntermediateTicket{}, "", errdefs.WithHint(errdefs.ErrUnavailable, "retry once the worker joined its control plane",
			"this worker has not joined its control plane yet")
	}
	t, err := VerifyIntermediate(key, si.Body, si.Sig, time.Now())
	if err != nil {
		return t, "", err
	}
	if t.Worker != name {
		return t, "", errdefs.WithHint(errdefs.ErrNotFound, "send the ticket to the worker it names",
			"model %s of run %s is held by worker %s, and this is %s", t.Model, t.Run, t.Worker, name)
	}
	if t.Lease != lease {
		return t, "", errdefs.WithHint(errdefs.ErrNotFound, "run the model again: its output went with the worker's earlier registration",
			"model %s of run %s was held by an earlier registration of worker %s", t.Model, t.Run, name)
	}
	return t, name, nil
}

// streamIntermediate streams the intermediate t names from
// Options.Intermediates; name is the holder's, for messages.
func (s *Server) streamIntermediate(ctx context.Context, t IntermediateTicket, name string, stream flight.FlightService_DoGetServer) error {
	m, err := s.opts.Intermediates.open(t.Run, t.Model)
	if err != nil {
		return heldError(err, t, name)
	}
	// The receiver picks the spare that holds it (Spares) by its size;
	// the header goes out with the first message.
	if err := stream.SetHeader(metadata.Pairs(intermediateSizeHeader, strconv.FormatInt(m.f.Size(), 10))); err != nil {
		m.release()
		return err
	}
	return streamFile(ctx, m, stream.SendMsg)
}

// intermediateSizeHeader is the response header of an intermediate's
// DoGet that gives the size of the holder's file: about the size of the
// file the fetch writes.
const intermediateSizeHeader = "lakehouse-intermediate-size"

// intermediateSize reads intermediateSizeHeader from md (0 if it is
// missing or not a size).
func intermediateSize(md metadata.MD) int64 {
	v := md.Get(intermediateSizeHeader)
	if len(v) != 1 {
		return 0
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// heldError is the error of the registry's open or openFile of the
// output t names, held by worker name.
func heldError(err error, t IntermediateTicket, name string) error {
	switch {
	case errors.Is(err, errGone):
		return errdefs.WithHint(errdefs.ErrNotFound, "run the model again: its output is gone",
			"worker %s holds no output of model %s of run %s", name, t.Model, t.Run)
	case errors.Is(err, fs.ErrNotExist):
		return errdefs.WithHint(errdefs.ErrNotFound, "run the model again: its output is gone",
			"the output of model %s of run %s is gone from worker %s", t.Model, t.Run, name)
	}
	return errdefs.New(errdefs.ErrInternal, "the output of model %s of run %s on worker %s is unreadable: %v", t.Model, t.Run, name, err)
}

// streamFile sends the batches of m's file as a DoGet stream and releases
// the caller's reference to m. The batches go to the transport as they
// lie in the mapping, so it is unmapped only once gRPC has written (or
// dropped) the last of them, which may be after streamFile returns, and
// the registry forgot it. A file read in place (plain
// columns) is sent message by message, its headers checked but not its
// values (the receiver checks what it writes, and the reader of that file
// the values); others (dictionaries) batch by batch, decoded and
// validated.
func streamFile(ctx context.Context, m *mapping, send func(any) error) error {
	defer m.release()
	f := m.f
	if f.InPlace() {
		return streamMessages(ctx, f, m, send)
	}
	w, write := newDataWriter(send, f.Schema())
	for i := range f.NumBatches() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := f.Batch(i)
		if err != nil {
			return err
		}
		err = write(&mappedBatch{RecordBatch: rec, m: m})
		rec.Release()
		if err != nil {
			return err
		}
	}
	return w.Close()
}

// streamMessages sends the schema of f, then each record batch message
// of f as it lies in the mapping m: one FlightData a batch, its body one
// reference to the mapping.
func streamMessages(ctx context.Context, f *arrowipc.File, m *mapping, send func(any) error) error {
	p := ipc.GetSchemaPayload(f.Schema(), memory.DefaultAllocator)
	schema := &dataMessage{header: append([]byte(nil), p.Meta().Bytes()...)}
	p.Release()
	if err := send(schema); err != nil {
		return err
	}
	for i := range f.NumBatches() {
		if err := ctx.Err(); err != nil {
			return err
		}
		header, body, err := f.Message(i)
		if err != nil {
			return err
		}
		m.retain()
		msg := &dataMessage{header: header, release: m.release}
		msg.Write(body)
		// The codec copies the header and takes the body by reference
		// inside send; if send fails before, the mapping is released here.
		err = send(msg)
		msg.done()
		if err != nil {
			return err
		}
	}
	return nil
}

// mapping is an open file whose batches are in flight: the last release
// closes it.
type mapping struct {
	f    *arrowipc.File
	refs atomic.Int64
}

func (m *mapping) retain() { m.refs.Add(1) }

func (m *mapping) release() {
	if m.refs.Add(-1) == 0 {
		m.f.Close()
	}
}

// mappedBatch is a batch of a mapping; each reference to it holds the
// mapping too (dataWriter keeps one per message until gRPC frees it).
type mappedBatch struct {
	arrow.RecordBatch
	m *mapping
}

func (b *mappedBatch) Retain() {
	b.m.retain()
	b.RecordBatch.Retain()
}

func (b *mappedBatch) Release() {
	b.RecordBatch.Release()
	b.m.release()
}
