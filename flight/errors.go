package flight

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorMarker starts the last line of every error message the server
// sends: a JSON object {"class": ..., "hint": ...} after it. The lines
// before it are the message. Clients that do not know the marker show the
// whole text, which still reads well; the Go and Python clients cut it off
// and rebuild the error class and hint from it.
const ErrorMarker = "lakehouse-error: "

// errorInfo is the JSON after ErrorMarker.
type errorInfo struct {
	Class string `json:"class"`
	Hint  string `json:"hint,omitempty"`
}

// classes maps errdefs classes to gRPC codes and their class names. A
// conflict travels as Aborted (gRPC's "retry at a higher level").
var classes = []struct {
	class error
	code  codes.Code
}{
	{errdefs.ErrNotFound, codes.NotFound},
	{errdefs.ErrAlreadyExists, codes.AlreadyExists},
	{errdefs.ErrInvalidArgument, codes.InvalidArgument},
	{errdefs.ErrConflict, codes.Aborted},
	{errdefs.ErrFailedPrecondition, codes.FailedPrecondition},
	{errdefs.ErrPermissionDenied, codes.PermissionDenied},
	{errdefs.ErrUnauthenticated, codes.Unauthenticated},
	{errdefs.ErrUnavailable, codes.Unavailable},
	{errdefs.ErrDataLoss, codes.DataLoss},
	{errdefs.ErrInternal, codes.Internal},
}

// ToStatus converts err to a gRPC status error: the code of its errdefs
// class, the message, and the marker line with class and hint. A nil err
// stays nil; an error that already is a status passes through.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isClassed(err) {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	msg, hint := errdefs.Split(err)
	class := errdefs.Class(err)
	code := codes.Internal
	for _, c := range classes {
		if c.class == class {
			code = c.code
		}
	}
	info, _ := json.Marshal(errorInfo{Class: errdefs.ClassName(err), Hint: hint})
	return status.Error(code, msg+"\n"+ErrorMarker+string(info))
}

// isClassed reports whether err carries an errdefs class of its own (a
// status error wrapped with one is converted anew).
func isClassed(err error) bool { return errdefs.Class(err) != errdefs.ErrInternal }

// FromStatus converts an error of a gRPC call back into an errdefs error
// with the server's message, class and hint. Transport failures (the
// server is down or unreachable) become ErrUnavailable with a hint naming
// addr.
func FromStatus(err error, addr string) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg, info, marked := splitMessage(st.Message())
	if marked {
		class := classByName(info.Class)
		if info.Hint != "" {
			return errdefs.WithHint(class, info.Hint, "%s", msg)
		}
		return errdefs.New(class, "%s", msg)
	}
	switch st.Code() {
	case codes.Unavailable:
		return errdefs.WithHint(errdefs.ErrUnavailable,
			"start it with `lakehouse serve`, or check --addr / LAKEHOUSE_ADDR",
			"cannot reach the lakehouse server at %s: %s", addr, msg)
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	case codes.ResourceExhausted:
		return errdefs.New(errdefs.ErrInvalidArgument, "%s", msg)
	}
	for _, c := range classes {
		if c.code == st.Code() {
			return errdefs.New(c.class, "%s", msg)
		}
	}
	return errdefs.New(errdefs.ErrInternal, "server: %s", msg)
}

// splitMessage cuts the marker line off a status message.
func splitMessage(s string) (msg string, info errorInfo, ok bool) {
	i := strings.LastIndex(s, ErrorMarker)
	if i < 0 {
		return s, info, false
	}
	dec := json.NewDecoder(strings.NewReader(s[i+len(ErrorMarker):]))
	if err := dec.Decode(&info); err != nil {
		return s, info, false
	}
	return strings.TrimSuffix(s[:i], "\n"), info, true
}

func classByName(name string) error {
	for _, c := range classes {
		if errdefs.ClassName(c.class) == name {
			return c.class
		}
	}
	return errdefs.ErrInternal
}
