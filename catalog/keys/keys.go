package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// recordKind is the catalog.Store record kind of keys.
const recordKind = "apikey"

// Prefix starts every key.
const Prefix = "lh_"

const (
	idBytes     = 8  // 16 hex characters
	secretBytes = 32 // 43 base64url characters
)

// Key describes an API key: everything but the key itself.
type Key struct {
	ID   string `json:"id"`
	User string `json:"user"`
	Role string `json:"role"`
	// Created is when the key was made.
	Created time.Time `json:"created"`
	// Expires is when the key stops working (zero: never).
	Expires time.Time `json:"expires,omitzero"`
	// Revoked is when the key was revoked (zero: it was not).
	Revoked time.Time `json:"revoked,omitzero"`
	// CreatedBy is the user who made the key ("" for a key made on the
	// server's machine).
	CreatedBy string `json:"created_by,omitempty"`
}

// Active reports whether k works at time now.
func (k Key) Active(now time.Time) bool {
	return k.Revoked.IsZero() && (k.Expires.IsZero() || now.Before(k.Expires))
}

// Status is "active", "revoked" or "expired" at time now.
func (k Key) Status(now time.Time) string {
	switch {
	case !k.Revoked.IsZero():
		return "revoked"
	case !k.Expires.IsZero() && !now.Before(k.Expires):
		return "expired"
	}
	return "active"
}

// record is a key as stored: its description and the hash of the key.
type record struct {
	Key
	// Hash is the hex SHA-256 of the whole key.
	Hash string `json:"hash"`
	// sum is Hash decoded (in memory only).
	sum [sha256.Size]byte
}

// decodeRecord reads a stored record.
func decodeRecord(id string, v []byte) (record, error) {
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return r, errdefs.New(errdefs.ErrDataLoss, "API key record %s is damaged: %v", id, err)
	}
	if n, err := hex.Decode(r.sum[:], []byte(r.Hash)); err != nil || n != sha256.Size || r.ID != id {
		return r, errdefs.New(errdefs.ErrDataLoss, "API key record %s is damaged: bad hash or id", id)
	}
	return r, nil
}

// NewKey describes a key to create.
type NewKey struct {
	User string
	Role string
	// Expires is when the key stops working (zero: never).
	Expires time.Time
	// CreatedBy is who asks (recorded; "" on the server's machine).
	CreatedBy string
}

// Options configure Keys.
type Options struct {
	// Now is the clock of creation, revocation and expiry. Default
	// time.Now.
	Now func() time.Time
	// Rand is the source of key ids and secrets. Default crypto/rand.
	Rand io.Reader
}

// Keys creates, lists, revokes and checks the API keys of a catalog
// store. It is safe for concurrent use.
type Keys struct {
	store catalog.Store
	now   func() time.Time
	rand  io.Reader
	// decoy is what Authenticate compares a key of an unknown id with.
	decoy [sha256.Size]byte

	mu sync.RWMutex
	// cache holds every key record by id once loaded (nil before).
	cache map[string]record
}

// New returns the keys of store.
func New(store catalog.Store, opts Options) *Keys {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	k := &Keys{store: store, now: opts.Now, rand: opts.Rand}
	// A hash no key has: random, never stored.
	if _, err := io.ReadFull(rand.Reader, k.decoy[:]); err != nil {
		panic("keys: no randomness: " + err.Error())
	}
	return k
}

// load fills the cache from the store. Call with mu held for writing.
func (k *Keys) load(ctx context.Context) error {
	if k.cache != nil {
		return nil
	}
	cache := map[string]record{}
	err := k.store.View(ctx, func(tx catalog.Tx) error {
		return tx.ListRecords(recordKind, "", func(id string, v []byte) error {
			r, err := decodeRecord(id, v)
			if err != nil {
				return err
			}
			cache[id] = r
			return nil
		})
	})
	if err != nil {
		return err
	}
	k.cache = cache
	return nil
}

// loaded returns the cache, loading it first if needed.
func (k *Keys) loaded(ctx context.Context) (map[string]record, error) {
	k.mu.RLock()
	c := k.cache
	k.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	return k.cache, nil
}

// Any reports whether the store has keys, revoked and expired ones
// included: a server that ever had keys keeps asking for one.
func (k *Keys) Any(ctx context.Context) (bool, error) {
	c, err := k.loaded(ctx)
	if err != nil {
		return false, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(c) > 0, nil
}

// List returns every key (active, expired and revoked), oldest first.
func (k *Keys) List(ctx context.Context) ([]Key, error) {
	c, err := k.loaded(ctx)
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	out := make([]Key, 0, len(c))
	for _, r := range c {
		out = append(out, r.Key)
	}
	k.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Create makes a key and returns it, with its description. The key is
// not kept: this is the only time it is seen. An invalid user or an empty
// role is ErrInvalidArgument; the caller checks that the role is one it
// knows.
func (k *Keys) Create(ctx context.Context, nk NewKey) (Key, string, error) {
	if err := ValidUser(nk.User); err != nil {
		return Key{}, "", err
	}
	if nk.Role == "" {
		return Key{}, "", errdefs.New(errdefs.ErrInvalidArgument, "the key's role is empty")
	}
	now := k.now()
	if !nk.Expires.IsZero() && !nk.Expires.After(now) {
		return Key{}, "", errdefs.New(errdefs.ErrInvalidArgument, "the key would expire at %s, which is not in the future",
			nk.Expires.UTC().Format(time.RFC3339))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.load(ctx); err != nil {
		return Key{}, "", err
	}
	var raw [idBytes + secretBytes]byte
	var id string
	for {
		if _, err := io.ReadFull(k.rand, raw[:]); err != nil {
			return Key{}, "", errdefs.New(errdefs.ErrInternal, "no randomness for a key: %v", err)
		}
		id = hex.EncodeToString(raw[:idBytes])
		if _, taken := k.cache[id]; !taken {
			break
		}
	}
	secret := Prefix + id + "_" + base64.RawURLEncoding.EncodeToString(raw[idBytes:])
	r := record{
		Key: Key{ID: id, User: nk.User, Role: nk.Role, Created: now.UTC(), CreatedBy: nk.CreatedBy},
	}
	if !nk.Expires.IsZero() {
		r.Expires = nk.Expires.UTC()
	}
	r.sum = sha256.Sum256([]byte(secret))
	r.Hash = hex.EncodeToString(r.sum[:])
	if err := k.put(ctx, r); err != nil {
		return Key{}, "", err
	}
	return r.Key, secret, nil
}

// Revoke revokes the key id and returns it. Revoking a revoked key changes
// nothing. An unknown id is ErrNotFound.
func (k *Keys) Revoke(ctx context.Context, id string) (Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.load(ctx); err != nil {
		return Key{}, err
	}
	r, ok := k.cache[id]
	if !ok {
		return Key{}, errdefs.WithHint(errdefs.ErrNotFound, "list the keys with `lakehouse auth key ls`",
			"API key %q does not exist", id)
	}
	if !r.Revoked.IsZero() {
		return r.Key, nil
	}
	r.Revoked = k.now().UTC()
	if err := k.put(ctx, r); err != nil {
		return Key{}, err
	}
	return r.Key, nil
}

// put stores r and then caches it. Call with mu held for writing.
func (k *Keys) put(ctx context.Context, r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := k.store.Update(ctx, func(tx catalog.Tx) error {
		return tx.PutRecord(recordKind, r.ID, b)
	}); err != nil {
		return err
	}
	k.cache[r.ID] = r
	return nil
}

// Authenticate returns the key whose secret key is. Every failure is
// errdefs.ErrUnauthenticated: an empty key, a key that is malformed, of an
// unknown id or with a wrong secret ("invalid API key", all alike and in
// the same time), and, once the secret matched, a revoked or expired key.
func (k *Keys) Authenticate(ctx context.Context, key string) (Key, error) {
	if key == "" {
		return Key{}, errdefs.New(errdefs.ErrUnauthenticated, "no API key")
	}
	c, err := k.loaded(ctx)
	if err != nil {
		return Key{}, err
	}
	id := keyID(key)
	k.mu.RLock()
	r, found := c[id]
	k.mu.RUnlock()
	want := &k.decoy
	if found {
		want = &r.sum
	}
	sum := sha256.Sum256([]byte(key))
	match := subtle.ConstantTimeCompare(sum[:], want[:]) == 1
	if !found || !match {
		return Key{}, errdefs.New(errdefs.ErrUnauthenticated, "invalid API key")
	}
	now := k.now()
	switch {
	case !r.Revoked.IsZero():
		return Key{}, errdefs.New(errdefs.ErrUnauthenticated, "API key %s was revoked at %s", r.ID, r.Revoked.Format(time.RFC3339))
	case !r.Expires.IsZero() && !now.Before(r.Expires):
		return Key{}, errdefs.New(errdefs.ErrUnauthenticated, "API key %s expired at %s", r.ID, r.Expires.Format(time.RFC3339))
	}
	return r.Key, nil
}

// keyID is the id part of a key, "" if key is not shaped like one. It
// looks only at the key's shape, never at the store.
func keyID(key string) string {
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 2*idBytes {
		return ""
	}
	return id
}

// ValidID reports whether id is shaped like a key id, with an
// ErrInvalidArgument error if not.
func ValidID(id string) error {
	if len(id) != 2*idBytes {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "key ids are the 16 hex characters shown by `lakehouse auth key ls`",
			"invalid API key id %q", id)
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "key ids are the 16 hex characters shown by `lakehouse auth key ls`",
			"invalid API key id %q", id)
	}
	return nil
}

// ValidUser checks the user of a key, with an ErrInvalidArgument error if
// it is not one: a user names branches (alice.dev), so it is one segment of
// a branch name: letters, digits, '_' and '-', not starting with '-'.
func ValidUser(user string) error {
	const rule = "use letters, digits, '_' and '-' only (it is the first part of branch names such as alice.dev)"
	if strings.TrimSpace(user) == "" {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, rule, "the key's user is empty")
	}
	if strings.Contains(user, ".") {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, rule, "invalid user %q: it contains '.'", user)
	}
	if _, err := catalog.ParseBranchName(user + ".dev"); err != nil {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, rule, "invalid user %q", user)
	}
	return nil
}

// String renders a key's description for logs (never a secret).
func (k Key) String() string { return fmt.Sprintf("%s (%s, %s)", k.ID, k.User, k.Role) }
