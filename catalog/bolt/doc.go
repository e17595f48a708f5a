// Package bolt is the on-disk catalog.Store: refs, commits, trees and small
// records in one bbolt file under the data directory.
//
// # Layout
//
// Every name below is a bbolt bucket unless it is marked as a key.
//
//	meta/
//	  version    key: format version, decimal ASCII ("1")
//	branches/
//	  <name>     key: branch name → commit id (64 hex characters)
//	tags/
//	  <name>     key: tag name → commit id
//	commits/
//	  <id>       key: commit id → JSON of catalog.Commit (the id is the key,
//	             not part of the value)
//	trees/
//	  <id>       key: tree id → canonical JSON of catalog.Tree
//	records/
//	  <kind>/    one bucket per record kind ("run", "profile", "apikey" of
//	             catalog/keys, "writer" of in-flight imports (catalog
//	             writers.go), …), created with its first record
//	    <key>    key: record key → opaque bytes
//
// Branches and tags are separate buckets, so a branch and a tag may share a
// name. Keys sort bytewise, which for the ASCII names and hex ids used here is
// the same as Go string order: ListRefs, FindCommits and ListRecords are plain
// cursor walks.
//
// # Invariants
//
//   - Commits and trees are content-addressed and never rewritten: the key of
//     a commit is Commit.ComputeID() of its value and the key of a tree is
//     Tree.ComputeID() of its value. Putting an id that is already stored is a
//     no-op.
//   - Refs and records are the only values that change in place.
//   - Everything a catalog operation writes goes through one Update, so it
//     is durable (fdatasync) and visible all at once, or not at all.
//
// # Format version and migrations
//
// meta/version holds the layout version of the file. Open applies, in order
// and in one transaction, every migration in [migrations] above the stored
// version. A file whose version is newer than this binary knows is refused
// rather than guessed at, and a read-only Open refuses a file that still
// needs migrating.
//
// # Creation and damage
//
// A file is created only where none exists, under a temporary name with
// its whole version-1 layout, and then linked into place: an existing file
// is never initialized, so an empty, short or foreign file is never taken
// for a new catalog. Such a file, a truncated one, and one whose pages
// bbolt trips over (a fault or a panic while reading) give an
// errdefs.ErrDataLoss error that names the file and says to restore a
// backup (Backup, BackupFile; `lakehouse backup`). Check reads every page
// for `lakehouse doctor`. See damage.go for how each layer works.
//
// # Caveats
//
// bbolt takes an exclusive flock on the file, so one lakehouse process at a
// time may open a data directory read-write (read-only opens share the lock).
// A second Open waits up to Options.Timeout and then fails with an
// errdefs.ErrUnavailable error.
//
// # Transactions
//
// View transactions run concurrently with each other and with Updates, each
// on a consistent snapshot. Updates are serialized, and ones that arrive
// together share one bbolt transaction and one fdatasync (group commit, see
// commit.go): each fn still runs exactly once, on its caller's goroutine,
// and one that fails is undone without touching the others. Do not call
// Update from inside an Update or View fn; it deadlocks, as with bbolt.
package bolt
