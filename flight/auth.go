package flight

import (
	"context"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Role is what an API key may do.
type Role string

// The roles of API keys.
const (
	// RoleReader reads: refs, tables, queries, runs.
	RoleReader Role = "reader"
	// RoleWriter also writes branches under its user's prefix ("alice.*"),
	// merges them into main, and runs pipelines into them.
	RoleWriter Role = "writer"
	// RoleAdmin does everything, including key management and writes to
	// any branch.
	RoleAdmin Role = "admin"
	// RoleWorker is a fleet worker's key: it registers and takes work.
	RoleWorker Role = "worker"
)

// Roles lists the valid roles.
var Roles = []Role{RoleAdmin, RoleWriter, RoleReader, RoleWorker}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, v := range Roles {
		if r == v {
			return true
		}
	}
	return false
}

// Permission is what an action needs.
type Permission int

const (
	// PermRead reads the catalog, queries, lists runs.
	PermRead Permission = iota
	// PermWrite changes branches named by the body (see Scoped).
	PermWrite
	// PermAdmin manages keys and the server.
	PermAdmin
	// PermWorker is the fleet's internal calls.
	PermWorker
)

// Principal is the caller of a request.
type Principal struct {
	User string `json:"user"`
	Role Role   `json:"role"`
	// KeyID identifies the key used (never the key itself).
	KeyID string `json:"key_id,omitempty"`
}

// Authenticator checks API keys.
type Authenticator interface {
	// Authenticate returns the principal of key. A missing, unknown,
	// revoked or expired key is errdefs.ErrUnauthenticated, with a hint
	// saying how to pass one; the error does not tell an unknown key from
	// a bad one, and takes the same time for both.
	Authenticate(ctx context.Context, key string) (Principal, error)
}

// Scoped is an action body that writes branches: Branches names them
// (for a merge, the target and then the source).
type Scoped interface {
	Branches() []string
}

// Allow reports whether p may do perm on the branches named.
//
// A reader reads. A writer also writes branches under "<user>." and merges
// its own branches into main. An admin does everything. A worker only
// makes the fleet's calls (and reads).
func (p Principal) Allow(perm Permission, branches ...string) error {
	switch perm {
	case PermRead:
		return nil
	case PermWorker:
		if p.Role == RoleWorker || p.Role == RoleAdmin {
			return nil
		}
		return denied(p, "this call is for fleet workers")
	case PermAdmin:
		if p.Role == RoleAdmin {
			return nil
		}
		return denied(p, "this needs an admin key")
	case PermWrite:
		switch p.Role {
		case RoleAdmin:
			return nil
		case RoleWriter:
			for i, b := range branches {
				if b == "" {
					continue
				}
				if p.owns(b) {
					continue
				}
				// A merge into main (the first branch) of a branch of
				// the writer's own (the second).
				if i == 0 && b == string(catalog.MainBranch) && len(branches) == 2 && p.owns(branches[1]) {
					continue
				}
				return errdefs.WithHint(errdefs.ErrPermissionDenied,
					"a writer writes only branches named "+p.User+".*; ask an admin for more",
					"user %s (writer) may not write branch %s", p.User, b)
			}
			return nil
		}
		return denied(p, "writes need a writer or admin key")
	}
	return denied(p, "unknown permission")
}

func (p Principal) owns(branch string) bool {
	return p.User != "" && strings.HasPrefix(branch, p.User+".")
}

func denied(p Principal, why string) error {
	return errdefs.WithHint(errdefs.ErrPermissionDenied, "ask an admin for a key with the role it needs",
		"user %s (%s) may not do this: %s", p.User, p.Role, why)
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller of a server request.
func PrincipalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}
