// Package catalog is lakehouse's git-for-data catalog: branches, tags and
// commits over Apache Iceberg tables.
//
// # Model
//
// A commit is an immutable, content-addressed catalog state: a tree mapping
// every namespace and table to its entry, plus parents, author, message,
// time and properties. A table entry points at one immutable Iceberg
// metadata file; two entries are the same table state exactly when their
// metadata locations are equal. Branches and tags are names for commits.
// Creating a branch writes one ref: it copies no data and costs the same for
// one table or ten thousand.
//
// # Invariants
//
//   - Nothing is updated in place. Table writes (TableFormat) only create
//     new data and metadata files; they become visible when a catalog
//     commit records the new entry, in one store transaction that also moves
//     the branch. A crash before that leaves orphan files and no change.
//   - One commit may change many tables; readers see all of it or none.
//   - main takes writes only by merge; tags are read-only.
//   - A commit computed against a stale base rebases onto the branch head
//     unless a table (or namespace) it changes also changed there, which is
//     an ErrConflict naming it.
//   - Every table's namespace exists in the same tree.
//
// # Merge
//
// Merge fast-forwards when the target has not moved since the merge base,
// otherwise merges three-way at table level against the best common
// ancestor (highest, then newest, then smallest id): a table changed on one
// side takes that side; changed on both sides is a conflict, except when
// both sides only appended to it, which the TableFormat resolves by adding
// one side's new data files to the other's. Merge commits have two parents.
// The merge is computed outside the write transaction; if the target moves
// meanwhile, the merge's changes rebase onto the new head like a
// CommitTables from a stale base (so merges of disjoint tables into a busy
// main all succeed), and when they touch what moved, the merge starts over
// from the new head (up to LocalOptions.MaxRetries times).
//
// # Pieces
//
// Store (store.go) is the transactional ref/commit/tree store, implemented
// by catalog/bolt and catalog/memstore and checked by catalog/storetest.
// TableFormat (service.go) reads and writes table data; catalog/iceberg
// implements it with apache/iceberg-go. Service (service.go) is what the
// CLI and servers call; Local implements it in process.
//
// # Caveats
//
// Trees are stored whole per commit (deduplicated by content), so a commit
// on a catalog with many thousands of tables writes a tree of that size.
// Merge bases in criss-cross histories pick one best ancestor rather than
// merging several, as git's recursive strategy would.
package catalog
