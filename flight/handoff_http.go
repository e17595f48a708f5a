package flight

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Intermediates over HTTP: Flight's extended location URIs (an http: URI
// where the data is had with a plain GET, its authorization negotiated
// outside Flight or carried in the URL, apache/arrow GH-46193). A
// worker's data plane without TLS answers HTTP/1.1 on its Flight port too
// (split.go): GET /flight/intermediate/TICKET, the handoff ticket in
// base64url (a presigned URL), returns the intermediate's Arrow IPC file
// as it lies in the worker's /dev/shm, sent with sendfile(2) from the
// page cache; the fetching worker splices the body into its file
// (splice(2)), then checks the whole file as a DoGet's file is checked
// (arrowipc.Check: footer, schema, dictionaries, every batch's header and
// offsets). No byte passes through user space on either side, nor
// through gRPC's framing: a cold fetch on loopback used 1.34 CPU-s per
// GB over DoGet. DoGet stays for TLS data planes and the control plane.

// IntermediatePath is where a data plane serves intermediates over HTTP:
// IntermediatePath + base64url(ticket).
const IntermediatePath = "/flight/intermediate/"

// arrowFileType is the media type of the Arrow IPC file format.
const arrowFileType = "application/vnd.apache.arrow.file"

// DataLocation is the location FetchIntermediate takes for the data plane
// of a worker registered at addr: http://host:port for one without TLS
// (the intermediate comes as a file over HTTP), addr itself for one with
// TLS (DoGet).
func DataLocation(addr string) string {
	target, useTLS, err := ParseAddr(addr)
	if err != nil || useTLS {
		return addr
	}
	return "http://" + target
}

// servesHTTP reports whether Serve answers HTTP/1.1 beside gRPC: a
// worker's data plane (it holds intermediates) without TLS.
func (s *Server) servesHTTP() bool {
	return s.opts.Placed != nil && s.opts.Intermediates != nil && s.opts.TLS == nil && s.opts.Fleet == nil
}

// openFile opens the file of model's output in run to send it as it
// lies, with its size; the caller closes it. Errors are open's.
func (r *Intermediates) openFile(run, model string) (*os.File, int64, error) {
	if r == nil {
		return nil, 0, errGone
	}
	r.mu.Lock()
	h := r.files[intermediateKey{run, model}]
	var path string
	if h != nil {
		path = h.path
	}
	r.mu.Unlock()
	if h == nil {
		return nil, 0, errGone
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// serveIntermediateHTTP answers GET IntermediatePath+TICKET on a data
// plane (servesHTTP).
func (s *Server) serveIntermediateHTTP(w http.ResponseWriter, r *http.Request) {
	const method = "GetIntermediateHTTP"
	s.opts.Metrics.request(method)
	start := time.Now()
	err := s.sendIntermediate(w, r)
	s.opts.Metrics.done(method, time.Since(start), err)
	if err != nil {
		s.opts.Log.Debug("intermediate not handed over", "err", err)
	}
}

// sendIntermediate sends the file a request's ticket grants, or writes
// the error; it returns the error either way.
func (s *Server) sendIntermediate(w http.ResponseWriter, r *http.Request) error {
	tkt, ok := strings.CutPrefix(r.URL.Path, IntermediatePath)
	if !ok {
		return writeHTTPError(w, errdefs.WithHint(errdefs.ErrNotFound, "GET "+IntermediatePath+"TICKET",
			"this data plane serves intermediates only, not %s", r.URL.Path))
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeHTTPError(w, errdefs.WithHint(errdefs.ErrInvalidArgument, "GET "+IntermediatePath+"TICKET",
			"method %s is not allowed here", r.Method))
	}
	raw, err := base64.RawURLEncoding.DecodeString(tkt)
	var it intermediateTicket
	if err == nil {
		err = json.Unmarshal(raw, &it)
	}
	if err != nil || it.Intermediate == nil {
		return writeHTTPError(w, errdefs.WithHint(errdefs.ErrInvalidArgument, "put the base64url of a handoff ticket in the path",
			"malformed intermediate ticket in the path"))
	}
	t, name, err := s.workerTicket(it.Intermediate)
	if err != nil {
		return writeHTTPError(w, err)
	}
	f, size, err := s.opts.Intermediates.openFile(t.Run, t.Model)
	if err != nil {
		return writeHTTPError(w, heldError(err, t, name))
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", arrowFileType)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	// The headers written, net/http hands a file to the connection's
	// ReadFrom: sendfile(2).
	_, err = io.Copy(w, &io.LimitedReader{R: f, N: size})
	return err
}

// httpError is the body of an error answer.
type httpError struct {
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
	Class string `json:"class"`
}

// writeHTTPError answers with err, its status by its class, and returns
// it.
func writeHTTPError(w http.ResponseWriter, err error) error {
	code := http.StatusInternalServerError
	switch errdefs.Class(err) {
	case errdefs.ErrNotFound:
		code = http.StatusNotFound
	case errdefs.ErrPermissionDenied:
		code = http.StatusForbidden
	case errdefs.ErrInvalidArgument:
		code = http.StatusBadRequest
	case errdefs.ErrUnavailable:
		code = http.StatusServiceUnavailable
	}
	msg, hint := errdefs.Split(err)
	b, _ := json.Marshal(httpError{Error: msg, Hint: hint, Class: errdefs.ClassName(err)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n')) //nolint:errcheck
	return err
}

// A fetch over HTTP reads the body stallPiece bytes at a time, each
// within stallTimeout (at least 136 KiB/s); over DoGet each message comes
// within stallTimeout.
const stallPiece = 4 << 20

var stallTimeout = 30 * time.Second

// errNoHTTP is fetchHTTP's error when the peer does not answer HTTP/1.1
// (a data plane with TLS), or answers it not as a data plane does (an
// error without the data plane's JSON body: a proxy between them that
// passes gRPC only): the fetch goes on with DoGet.
var errNoHTTP = errors.New("no HTTP answer")

// fetchHTTP fetches the intermediate ticket grants from the data plane at
// location (http://host:port) into a file, checks it, and returns its
// path for the caller to rename to dst: dst+".fetch", or the spare that
// holds its size best (written over, then cut to size). On error nothing
// of it is left. A peer that answers nothing within stallTimeout is
// Unavailable.
func fetchHTTP(ctx context.Context, location string, ticket []byte, dst string, spares *Spares) (tmp string, err error) {
	tmp = dst + ".fetch"
	os.Remove(tmp) // what a fetch killed midway left
	err = fetchHTTPInto(ctx, location, ticket, dst, spares, &tmp)
	if err != nil {
		os.Remove(tmp) // a spare too: it was taken
		return "", err
	}
	return tmp, nil
}

// fetchHTTPInto is fetchHTTP; *tmp is the file it writes, set to a spare
// once the size is known.
func fetchHTTPInto(ctx context.Context, location string, ticket []byte, dst string, spares *Spares, tmp *string) (err error) {
	host := strings.TrimPrefix(location, "http://")
	if _, port, perr := net.SplitHostPort(host); perr != nil || port == "" || strings.ContainsAny(host, "/ ") {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "use http://host:port", "invalid data plane location %q", location)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errdefs.WithHint(errdefs.ErrUnavailable, "check that the worker is up and its data plane reachable",
			"cannot reach the data plane at %s: %v", host, err)
	}
	defer conn.Close()
	// The context ends the transfer by a deadline in the past.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) }) //nolint:errcheck
	defer stop()
	broken := func(what string, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errdefs.WithHint(errdefs.ErrUnavailable, "retry: the worker may have stopped",
			"the data plane at %s %s: %v", host, what, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, location+IntermediatePath+base64.RawURLEncoding.EncodeToString(ticket), nil)
	if err != nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "intermediate request: %v", err)
	}
	req.Header.Set("Accept", arrowFileType)
	req.Close = true
	if err := req.Write(conn); err != nil {
		return broken("took no request", err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	conn.SetReadDeadline(time.Now().Add(stallTimeout)) //nolint:errcheck
	if ctx.Err() != nil {
		return ctx.Err()
	}
	resp, err := http.ReadResponse(br, req)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errdefs.WithHint(errdefs.ErrUnavailable, "retry: the worker may have stopped or been cut off",
			"the data plane at %s did not answer within %s", host, stallTimeout)
	default:
		return fmt.Errorf("%w from %s: %v", errNoHTTP, host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return answerError(resp, host)
	}
	if ct := resp.Header.Get("Content-Type"); ct != arrowFileType {
		return errdefs.New(errdefs.ErrInvalidArgument, "the data plane at %s sent %q, not an Arrow IPC file", host, ct)
	}
	size := resp.ContentLength
	if size < 0 || len(resp.TransferEncoding) > 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "the data plane at %s sent an intermediate without its length", host)
	}
	if size == 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "the data plane at %s sent an empty intermediate, not an Arrow IPC file", host)
	}
	var f *os.File
	spare := false
	if sp, ok := spares.take(dst, size); ok {
		*tmp, spare = sp, true
		f, err = os.OpenFile(sp, os.O_WRONLY, 0)
	} else {
		f, err = os.OpenFile(*tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	}
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	if err := preallocate(f, size); err != nil {
		return fmt.Errorf("no room for the intermediate of %d bytes from %s in %s: %w", size, host, filepath.Dir(dst), err)
	}
	// What the response's reader holds already, then the rest spliced
	// from the socket into the file.
	head, _ := br.Peek(int(min(int64(br.Buffered()), size)))
	if _, err := f.Write(head); err != nil {
		return err
	}
	// A piece at a time, each within stallTimeout: a holder stopped or
	// cut off midway fails the fetch rather than holding it forever.
	for rest := size - int64(len(head)); rest > 0; {
		conn.SetReadDeadline(time.Now().Add(stallTimeout)) //nolint:errcheck
		// Checked once the deadline is set: a cancel from now on cuts
		// the copy (context.AfterFunc above).
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n, err := io.CopyN(f, conn, min(rest, stallPiece))
		rest -= n
		switch {
		case err == nil:
		case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG):
			return fmt.Errorf("writing %s: %w", *tmp, err)
		case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil:
			return errdefs.WithHint(errdefs.ErrUnavailable, "retry: the worker may have stopped or been cut off",
				"the data plane at %s sent less than %d MiB of the intermediate in %s", host, stallPiece>>20, stallTimeout)
		case errors.Is(err, io.EOF):
			return broken("stopped sending the intermediate", io.ErrUnexpectedEOF)
		default:
			return broken("stopped sending the intermediate", err)
		}
	}
	if spare {
		if err := f.Truncate(size); err != nil {
			return err
		}
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	if _, err := arrowipc.Check(ctx, *tmp); err != nil {
		if errdefs.Is(err, errdefs.ErrInvalidArgument) {
			return fmt.Errorf("intermediate from %s: %w", host, err)
		}
		return err
	}
	return nil
}

// answerError is the error of a data plane's answer other than 200.
func answerError(resp *http.Response, host string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var he httpError
	if json.Unmarshal(b, &he) == nil && he.Error != "" {
		class := classByName(he.Class)
		if he.Hint != "" {
			return errdefs.WithHint(class, he.Hint, "%s", he.Error)
		}
		return errdefs.New(class, "%s", he.Error)
	}
	// Not a data plane's answer (a proxy's page, another server): DoGet
	// may still get through.
	return fmt.Errorf("%w from %s: it answered %s", errNoHTTP, host, resp.Status)
}
