package flight

import (
	"context"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/keys"
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
	// PermRead reads the catalog, queries, lists runs: every role but
	// worker.
	PermRead Permission = iota
	// PermWrite changes the branches named by the body (see Scoped): an
	// admin's any branch, a writer's its own (<user>.*).
	PermWrite
	// PermAdmin manages keys and the server.
	PermAdmin
	// PermWorker is the fleet's internal calls: a worker key's only.
	PermWorker
	// PermMerge merges a ref into a branch; the body names the target and
	// then the source branch (see Scoped). A writer merges anything into
	// its own branches, and its own branches into main.
	PermMerge
	// PermTag creates and deletes tags: an admin's. Tags are shared,
	// read-only names (releases), not a user's workspace.
	PermTag
	// PermWork takes work from the control plane (the work stream) and
	// reads the intermediates it holds: a worker key's, or an admin's.
	PermWork
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
// (for a merge, the target and then the source). A PermWrite action whose
// body is not Scoped is an admin's only.
type Scoped interface {
	Branches() []string
}

// Allow reports whether p may do perm on the branches named, with an
// errdefs.ErrPermissionDenied error if not.
//
// A reader reads. A writer also writes branches under "<user>." (creates,
// deletes, renames them, commits and imports into them), merges any ref
// into them, and merges them into main. An admin does everything,
// including tags and keys. A worker makes the fleet's calls, and nothing
// else.
func (p Principal) Allow(perm Permission, branches ...string) error {
	if !p.Role.Valid() {
		return denied(p, "the key has no known role")
	}
	switch perm {
	case PermRead:
		if p.Role == RoleWorker {
			return denied(p, "a worker key makes only the fleet's calls")
		}
		return nil
	case PermWorker:
		if p.Role == RoleWorker {
			return nil
		}
		return errdefs.WithHint(errdefs.ErrPermissionDenied,
			"create a worker key with `lakehouse auth key create --user NAME --role worker` and give it to the worker",
			"user %s (%s) may not join the fleet: a worker needs a key of role worker", p.User, p.Role)
	case PermWork:
		if p.Role == RoleWorker || p.Role == RoleAdmin {
			return nil
		}
		return errdefs.WithHint(errdefs.ErrPermissionDenied,
			"create a worker key with `lakehouse auth key create --user NAME --role worker` and give it to the worker",
			"user %s (%s) may not take work from the control plane: that needs a key of role worker", p.User, p.Role)
	case PermAdmin:
		if p.Role == RoleAdmin {
			return nil
		}
		return denied(p, "this needs an admin key")
	case PermTag:
		if p.Role == RoleAdmin {
			return nil
		}
		return errdefs.WithHint(errdefs.ErrPermissionDenied, "ask an admin to tag it, or keep it on a branch "+p.userBranches(),
			"user %s (%s) may not create or delete tags: tags are an admin's", p.User, p.Role)
	case PermWrite, PermMerge:
		switch p.Role {
		case RoleAdmin:
			return nil
		case RoleWriter:
			return p.allowWriter(perm, branches)
		}
		return denied(p, "writes need a writer or admin key")
	}
	return denied(p, "unknown permission")
}

// allowWriter is the writer's rule for PermWrite and PermMerge.
func (p Principal) allowWriter(perm Permission, branches []string) error {
	if perm == PermMerge && len(branches) > 0 {
		into := branches[0]
		switch {
		case p.owns(into):
			return nil
		case into == string(catalog.MainBranch) && len(branches) == 2 && p.owns(branches[1]):
			return nil
		case into == string(catalog.MainBranch):
			return errdefs.WithHint(errdefs.ErrPermissionDenied, "merge a branch "+p.userBranches()+" into main, or ask an admin",
				"user %s (writer) may merge into main only its own branches, not %s", p.User, orCommit(branches))
		}
		return p.writeDenied(into)
	}
	named := false
	for _, b := range branches {
		if b == "" {
			continue
		}
		if !p.owns(b) {
			return p.writeDenied(b)
		}
		named = true
	}
	if !named {
		// A write whose body names no branch (not Scoped) is not a
		// writer's: the policy fails closed.
		return errdefs.WithHint(errdefs.ErrPermissionDenied, "name a branch "+p.userBranches()+", or ask an admin",
			"user %s (writer) may not make this write: it names no branch of the user's", p.User)
	}
	return nil
}

func (p Principal) writeDenied(branch string) error {
	return errdefs.WithHint(errdefs.ErrPermissionDenied,
		"a writer writes only branches "+p.userBranches()+"; ask an admin for more",
		"user %s (writer) may not write branch %s", p.User, branch)
}

// orCommit names the source of a merge body.
func orCommit(branches []string) string {
	if len(branches) < 2 || branches[1] == "" {
		return "a commit"
	}
	return branches[1]
}

func (p Principal) userBranches() string { return "named " + p.User + ".*" }

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

// KeyChecker finds the key of a bearer token: catalog/keys.Keys.
type KeyChecker interface {
	// Authenticate returns the key of secret, or an
	// errdefs.ErrUnauthenticated error that does not tell an unknown key
	// from a wrong one.
	Authenticate(ctx context.Context, secret string) (keys.Key, error)
}

// passKeyHint says how to pass a key; every Unauthenticated error ends
// with it.
const passKeyHint = "pass an API key with `export LAKEHOUSE_API_KEY=<key>` or `lakehouse config set api_key <key>` " +
	"(Python: Client(api_key=...)); an admin creates keys with `lakehouse auth key create`"

// KeyAuthenticator is the Authenticator of a server with API keys.
func KeyAuthenticator(k KeyChecker) Authenticator { return keyAuth{k} }

type keyAuth struct{ k KeyChecker }

func (a keyAuth) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if secret == "" {
		return Principal{}, errdefs.WithHint(errdefs.ErrUnauthenticated, passKeyHint, "this server needs an API key, and the call carries none")
	}
	key, err := a.k.Authenticate(ctx, secret)
	if err != nil {
		if !errdefs.Is(err, errdefs.ErrUnauthenticated) {
			return Principal{}, err
		}
		msg, _ := errdefs.Split(err)
		return Principal{}, errdefs.WithHint(errdefs.ErrUnauthenticated, passKeyHint, "%s", msg)
	}
	p := Principal{User: key.User, Role: Role(key.Role), KeyID: key.ID}
	if !p.Role.Valid() {
		return Principal{}, errdefs.WithHint(errdefs.ErrUnauthenticated, "ask an admin for a new key",
			"API key %s has an unknown role %q", key.ID, key.Role)
	}
	return p, nil
}

func invalidRole(r string) error {
	names := make([]string, len(Roles))
	for i, v := range Roles {
		names[i] = string(v)
	}
	return errdefs.WithHint(errdefs.ErrInvalidArgument, "use "+strings.Join(names, ", "),
		"invalid role %q", r)
}

// ParseRole validates a role name where it enters (CLI flags, bodies).
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", invalidRole(s)
	}
	return r, nil
}
