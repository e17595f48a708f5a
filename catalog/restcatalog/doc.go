// Package restcatalog serves the lakehouse catalog as an Iceberg REST
// catalog (apache/iceberg open-api/rest-catalog-open-api.yaml), so that
// PyIceberg, DuckDB, Spark, Trino and iceberg-go find tables, branches and
// tags by themselves. It is an http.Handler over a catalog.Service and the
// Iceberg table format; `lakehouse serve` mounts it under /iceberg/.
//
// # Layout
//
// The ref is part of the catalog URI, as Nessie does:
//
//	http://host:8181/iceberg/<ref>                     the catalog URI
//	GET  <uri>/v1/config                               defaults: prefix=<ref>
//	     <uri>/v1/<ref>/namespaces[/<ns>[/tables[/<t>]]]
//	     <uri>/v1/<ref>/tables/rename, /transactions/commit
//
// <ref> is a branch (main, alice.dev), a tag (v1) or a commit (@3f9a1c2e),
// as catalog.ParseRef reads it. The prefix is what selects the ref of a
// call; /iceberg/v1/<ref>/… (a client given the base URI and the prefix)
// works too. GET v1/config lists exactly the endpoints served.
//
// # Invariants
//
// Reads serve the metadata file of the table's entry at the ref, as it is.
// Every write lands as one ordinary catalog commit on the branch, computed
// against the head it read (CommitTables with that base): a concurrent
// change to the same table fails with 409 CommitFailedException, like any
// two lakehouse commits, and a change to another table rebases. Table
// updates go through iceberg-go's Requirements, Updates and metadata
// builder (catalog/iceberg CommitUpdates), which write a new metadata
// file; nothing is updated in place and nothing is deleted (a dropped
// table's files stay until the garbage collector finds them unreferenced).
// A transactions/commit is one catalog commit across its tables: any
// failing requirement fails the whole request, and nothing is applied.
//
// Tags and commits are read-only (403), and main takes writes only by
// merge (403): clients write to a branch and `lakehouse merge` brings the
// result to main. With API keys on, every call needs "Authorization:
// Bearer <key>" (401 otherwise); writes need a key that may write the
// branch, and commits carry the key's user as author.
//
// # Caveats
//
// Namespaces have one level (a nested namespace is 400, except that
// loading or probing a table in one is 404 NoSuchTableException, which
// Iceberg's Java client needs to fall back to a metadata table such as
// ns.t.snapshots); listings are not paged. Views, scan planning, metrics and credential vending are not
// served. Stage-create writes nothing: the commit that follows creates the
// table. A table's location is chosen by the server (a create request
// that gives one is refused) and register accepts only metadata files in
// the warehouse. Clients write data and manifest files to the table's
// location themselves, so they need access to the warehouse (a local
// path, or S3 credentials of their own).
package restcatalog
