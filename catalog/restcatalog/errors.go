package restcatalog

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// restError is an error with the HTTP status and Iceberg error type it is
// answered with.
type restError struct {
	status int
	typ    string
	msg    string
}

func (e *restError) Error() string { return e.msg }

// errorBody is the Iceberg REST error response.
type errorBody struct {
	Error errorModel `json:"error"`
}

type errorModel struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
}

func badRequest(format string, args ...any) error {
	return &restError{status: http.StatusBadRequest, typ: "BadRequestException", msg: fmt.Sprintf(format, args...)}
}

func notFound(typ, format string, args ...any) error {
	return &restError{status: http.StatusNotFound, typ: typ, msg: fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) error {
	return &restError{status: http.StatusForbidden, typ: "ForbiddenException", msg: fmt.Sprintf(format, args...)}
}

func methodNotAllowed(r *http.Request) error {
	return &restError{status: http.StatusMethodNotAllowed, typ: "MethodNotAllowedException",
		msg: fmt.Sprintf("%s is not served for %s", r.Method, r.URL.Path)}
}

// refError is the error of a ref that does not resolve: 404 for a missing
// ref, err's own class otherwise.
func refError(err error) error {
	if errdefs.Is(err, errdefs.ErrNotFound) {
		return notFound("NoSuchReferenceException", "%s", err.Error())
	}
	return err
}

// status returns the HTTP status and Iceberg error type of err.
func status(err error) (int, string) {
	var re *restError
	if errors.As(err, &re) {
		return re.status, re.typ
	}
	switch errdefs.Class(err) {
	case errdefs.ErrNotFound:
		return http.StatusNotFound, "NotFoundException"
	case errdefs.ErrAlreadyExists:
		return http.StatusConflict, "AlreadyExistsException"
	case errdefs.ErrInvalidArgument:
		return http.StatusBadRequest, "BadRequestException"
	case errdefs.ErrConflict:
		return http.StatusConflict, "CommitFailedException"
	case errdefs.ErrFailedPrecondition:
		return http.StatusConflict, "ConflictException"
	case errdefs.ErrPermissionDenied:
		return http.StatusForbidden, "ForbiddenException"
	case errdefs.ErrUnauthenticated:
		return http.StatusUnauthorized, "NotAuthorizedException"
	case errdefs.ErrUnavailable:
		return http.StatusServiceUnavailable, "ServiceUnavailableException"
	}
	return http.StatusInternalServerError, "InternalServerError"
}

// writeError answers a request with err in the Iceberg error shape. A HEAD
// request gets the status alone.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, typ := status(err)
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lakehouse"`)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, errorBody{Error: errorModel{Message: err.Error(), Type: typ, Code: code}}) //nolint:errcheck
}

// sizeText renders a byte count for a message.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
