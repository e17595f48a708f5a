// Package keys keeps the API keys of `lakehouse serve` in the catalog store.
//
// A key reads lh_<id>_<secret>: id is 16 hex characters that name the key
// in listings and revocations, secret is 32 random bytes in unpadded
// base64url. The key is returned once, by Create; the store keeps only the
// SHA-256 of the whole key, with the key's id, user, role, creation time,
// optional expiry and revocation time.
//
// # Layout
//
// Keys are catalog.Store records of kind "apikey" (records/apikey/ in
// catalog/bolt), one per key:
//
//	records/apikey/
//	  <id>   JSON {"id","user","role","hash","created","expires","revoked","created_by"}
//
// Records need no migration of the bolt layout: the bucket of a record kind
// is created with its first record.
//
// # Invariants
//
//   - A key is never stored or logged, only its hash. Listings carry the
//     hash of no key (Key has no hash field).
//   - Keys are never deleted: a revoked key stays listed with its revocation
//     time, so the store has keys as soon as the first one was created, and
//     a server that had keys never opens up again when they are all revoked.
//   - Authenticate takes the same steps for an unknown key id, a malformed
//     key and a wrong secret: it hashes what it was given and compares the
//     hash in constant time with the stored one, or with a random one that
//     matches nothing.
//
// # Caveats
//
// Keys caches every key in memory on first use and writes through it, so a
// revocation made through the same Keys takes effect at once. It assumes it
// is the only writer of keys while it lives: true of a server, which holds
// the catalog file alone. Short-lived command-line uses start from the
// store each time.
package keys
