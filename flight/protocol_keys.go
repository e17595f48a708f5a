package flight

import (
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/keys"
)

// Key actions: admin keys only. A server without keys (loopback, every
// caller an admin) lists them but creates none: its first key comes from
// `lakehouse auth init` on its data dir, and a restart turns keys on.
const (
	ActionCreateKey = ActionPrefix + "CreateKey" // CreateKeyBody → CreatedKey
	ActionListKeys  = ActionPrefix + "ListKeys"  // {} → [KeyInfo]
	ActionRevokeKey = ActionPrefix + "RevokeKey" // KeyIDBody → KeyInfo
)

// CreateKeyBody asks for a key.
type CreateKeyBody struct {
	User string `json:"user"`
	// Role is admin, writer, reader or worker.
	Role string `json:"role"`
	// ExpiresInSeconds is the key's lifetime, from the server's clock
	// (0: it never expires).
	ExpiresInSeconds int64 `json:"expires_in_seconds,omitempty"`
}

// KeyIDBody names a key by its id.
type KeyIDBody struct {
	ID string `json:"id"`
}

// KeyInfo describes a key: never the key itself.
type KeyInfo struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Role    string    `json:"role"`
	Created time.Time `json:"created"`
	// Expires is zero (absent) for a key that never expires.
	Expires time.Time `json:"expires,omitzero"`
	// Revoked is zero (absent) for a key that was not revoked.
	Revoked time.Time `json:"revoked,omitzero"`
	// Status is active, expired or revoked, by the server's clock.
	Status    string `json:"status"`
	CreatedBy string `json:"created_by,omitempty"`
}

// CreatedKey is a new key: the only answer that holds one.
type CreatedKey struct {
	KeyInfo
	// Key is the API key, shown this once.
	Key string `json:"key"`
}

// WireKey converts a key's description for the wire, with its status at
// time now.
func WireKey(k keys.Key, now time.Time) KeyInfo {
	return KeyInfo{ID: k.ID, User: k.User, Role: k.Role, Created: k.Created, Expires: k.Expires,
		Revoked: k.Revoked, Status: k.Status(now), CreatedBy: k.CreatedBy}
}
