// Package errdefs holds the one small set of error classes used across the
// whole lakehouse binary. Code wraps a class with context:
//
//	fmt.Errorf("table %s on %s: %w", t, ref, errdefs.ErrNotFound)
//
// and each edge (CLI exit codes, HTTP status, Flight/gRPC status) converts
// the class once. Errors a user can recover from carry a hint saying what to
// do next (see WithHint).
package errdefs

import (
	"errors"
	"fmt"
	"strings"
)

// The error classes. Match them with errors.Is.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrConflict           = errors.New("conflict")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	ErrPermissionDenied   = errors.New("permission denied")
	// ErrUnauthenticated is a request to a server without a valid API key
	// (missing, unknown, expired or revoked). It exits like a permission
	// error; the hint says how to pass a key.
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrInternal        = errors.New("internal error")
	// ErrDataLoss is stored state that is damaged or missing (a truncated
	// catalog file, a deleted data file): nothing the caller can retry or
	// rephrase fixes it; it needs a restore or a repair.
	ErrDataLoss = errors.New("data loss")
)

// classError is an error of a class whose message is written in full by the
// caller: Error() does not append the class name.
type classError struct {
	class error
	msg   string
	hint  string
}

func (e *classError) Error() string {
	if e.hint == "" {
		return e.msg
	}
	return e.msg + "; " + e.hint
}

func (e *classError) Unwrap() error { return e.class }

// Hint implements Hinted.
func (e *classError) Hint() string { return e.hint }

// Hinted is an error that carries a hint apart from its message; its
// Error() ends with the hint, after "; " or a new line. WithHint's errors
// are Hinted; so may an edge's own error types be.
type Hinted interface {
	error
	Hint() string
}

// New returns an error of class with a complete, user-facing message.
// Unlike fmt.Errorf("...: %w", class) the class name is not appended.
func New(class error, format string, args ...any) error {
	return &classError{class: class, msg: fmt.Sprintf(format, args...)}
}

// WithHint returns an error of class whose message ends with a hint that
// tells the user what to do next, e.g.
// "create it with `lakehouse branch create alice.dev`".
func WithHint(class error, hint string, format string, args ...any) error {
	return &classError{class: class, msg: fmt.Sprintf(format, args...), hint: hint}
}

// Is reports whether err is of class.
func Is(err, class error) bool { return errors.Is(err, class) }

// Class returns the class of err, or ErrInternal when err carries none.
func Class(err error) error {
	for _, c := range []error{ErrNotFound, ErrAlreadyExists, ErrInvalidArgument, ErrConflict,
		ErrFailedPrecondition, ErrUnavailable, ErrPermissionDenied, ErrUnauthenticated, ErrDataLoss, ErrInternal} {
		if errors.Is(err, c) {
			return c
		}
	}
	return ErrInternal
}

// Exit codes of the CLI, as documented in API.md.
const (
	ExitOK               = 0
	ExitFailed           = 1
	ExitUsage            = 2
	ExitNotFound         = 3
	ExitConflict         = 4
	ExitPermissionDenied = 5
	ExitUnavailable      = 6
)

// ExitCode maps an error to the CLI exit code for its class.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	switch Class(err) {
	case ErrNotFound:
		return ExitNotFound
	case ErrInvalidArgument:
		return ExitUsage
	case ErrConflict, ErrAlreadyExists, ErrFailedPrecondition:
		return ExitConflict
	case ErrPermissionDenied, ErrUnauthenticated:
		return ExitPermissionDenied
	case ErrUnavailable:
		return ExitUnavailable
	case ErrDataLoss:
		return ExitFailed
	default:
		return ExitFailed
	}
}

// Split returns err's message without its hint, and the hint ("" when
// err carries none). The hint of the first Hinted error in err's chain is
// split off the end of the whole message: fmt.Errorf("x: %w",
// WithHint(...)) gives ("x: msg", hint).
func Split(err error) (msg, hint string) {
	msg = err.Error()
	var h Hinted
	if errors.As(err, &h) && h.Hint() != "" {
		for _, sep := range []string{"; ", "\n"} {
			if m, ok := strings.CutSuffix(msg, sep+h.Hint()); ok {
				return m, h.Hint()
			}
		}
	}
	return msg, ""
}

// ClassName is the name of err's class as programs see it, e.g.
// "not_found", "invalid_argument", "internal".
func ClassName(err error) string {
	switch Class(err) {
	case ErrNotFound:
		return "not_found"
	case ErrAlreadyExists:
		return "already_exists"
	case ErrInvalidArgument:
		return "invalid_argument"
	case ErrConflict:
		return "conflict"
	case ErrFailedPrecondition:
		return "failed_precondition"
	case ErrUnavailable:
		return "unavailable"
	case ErrPermissionDenied:
		return "permission_denied"
	case ErrUnauthenticated:
		return "unauthenticated"
	case ErrDataLoss:
		return "data_loss"
	default:
		return "internal"
	}
}
