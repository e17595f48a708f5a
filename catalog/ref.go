package catalog

import (
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// MinCommitPrefix is the shortest commit hash prefix a ref may use.
const MinCommitPrefix = 8

// Ref is a parsed reference to a catalog state. The forms are
//
//	main                      a branch or tag by name (its head)
//	main@3f9a1c2e             a commit in the history of main (hash prefix, 8+ hex)
//	@3f9a1c2e…                a detached commit
//	main@2026-11-21T10:00:00Z the last commit of main at or before a time
//
// Values have been validated by ParseRef.
type Ref struct {
	// Name is a branch or tag name; empty for a detached commit.
	Name string
	// Commit is a lower-case hex commit hash prefix; empty when absent.
	Commit string
	// Time is set for the time form; zero otherwise.
	Time time.Time
}

// String renders the ref in the form it was parsed from.
func (r Ref) String() string {
	switch {
	case r.Commit != "":
		return r.Name + "@" + r.Commit
	case !r.Time.IsZero():
		return r.Name + "@" + r.Time.UTC().Format(time.RFC3339Nano)
	default:
		return r.Name
	}
}

// IsBranchHead reports whether the ref names a head (of a branch or tag)
// rather than a fixed commit or time.
func (r Ref) IsBranchHead() bool { return r.Commit == "" && r.Time.IsZero() }

const refHint = "refs look like main, v1, main@3f9a1c2e, @3f9a1c2e or main@2026-11-21T10:00:00Z"

// ParseRef parses and validates a ref string.
func ParseRef(s string) (Ref, error) {
	if s == "" {
		return Ref{}, errdefs.WithHint(errdefs.ErrInvalidArgument, refHint, "ref is empty")
	}
	name, at, hasAt := strings.Cut(s, "@")
	if name != "" && name != string(MainBranch) {
		if err := checkRefName("ref", name); err != nil {
			return Ref{}, errdefs.WithHint(errdefs.ErrInvalidArgument, refHint, "invalid ref %q: %v", s, unhinted(err))
		}
	}
	if !hasAt {
		return Ref{Name: name}, nil
	}
	if at == "" {
		return Ref{}, errdefs.WithHint(errdefs.ErrInvalidArgument, refHint, "invalid ref %q: nothing after '@'", s)
	}
	if isHex(at) {
		if len(at) < MinCommitPrefix || len(at) > 64 {
			return Ref{}, errdefs.WithHint(errdefs.ErrInvalidArgument, refHint,
				"invalid ref %q: a commit hash prefix has %d to 64 hex characters", s, MinCommitPrefix)
		}
		return Ref{Name: name, Commit: strings.ToLower(at)}, nil
	}
	if name == "" {
		return Ref{}, errdefs.WithHint(errdefs.ErrInvalidArgument, refHint,
			"invalid ref %q: a detached ref is '@' followed by a commit hash", s)
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return Ref{}, errdefs.WithHint(errdefs.ErrInvalidArgument, refHint,
			"invalid ref %q: %q is neither a commit hash (8+ hex characters) nor an RFC 3339 time", s, at)
	}
	return Ref{Name: name, Time: t}, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// unhinted strips a hint from err's message, for nesting one message in another.
func unhinted(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "; "); i >= 0 {
		return msg[:i]
	}
	return msg
}
