// Package scancache is the local scan cache of a warehouse on object
// storage: it makes a local copy of a Parquet data file that holds only
// what a scan reads, fetched by range requests.
//
// Data files are immutable, so an entry is keyed by object key and ETag: an
// object rewritten under the same key has a new ETag and a new entry, and
// the old one is never served. Materialize fetches the footer (the last
// 64 KiB, more if the footer is longer), then, for every row group, the
// selected columns' chunks (from the dictionary page when there is one),
// their column and offset indexes and bloom filters, and the leading magic.
// A later scan needing one more column fetches only that column's ranges
// (the differential cache).
//
// A scan with a filter (MaterializeScan with Scan.RowGroups) fetches only
// the row groups whose footer statistics do not rule the filter out, and
// gets a file of its own: the needed ranges copied from the entry's data
// file at their offsets, followed by a footer that lists only the kept
// row groups. DuckDB prunes row groups by statistics only for the filters
// it pushes into its Parquet scan (not, for example, an OR across
// columns); a footer that does not name a pruned row group is what keeps
// any reader out of its unfetched bytes. Scan.PlanOnly fetches at most
// the footer and says what the scan would fetch (EXPLAIN).
//
// # Use
//
//	c, err := scancache.Open(filepath.Join(dataDir, "cache", "scan"), 0) // once per process
//	local, st, err := c.Materialize(ctx, storage, key, columns)          // per planned file
//	defer c.Release(local)
//	// DuckDB reads local (one of the files its sandbox allows); st.String()
//	// is the file's line in EXPLAIN output.
//
// # Layout
//
//	<dir>/
//	    <id>.parquet   sparse file of the object's full size; unfetched bytes are holes
//	    <id>.json      sidecar: key, ETag, size, footer span, fetched ranges with xxh3-64 sums
//	    <id>.lock      use lock: shared while a scan uses the entry, exclusive to remove it
//	    <id>.rg/<n>.parquet  a pruned scan's own file, locked shared until Release
//	    <id>.fill      fill lock: exclusive while one process fetches into the entry
//	    evict.lock     held by the one process evicting
//
// where <id> is the hex of the first 20 bytes of SHA-256(key NUL etag).
//
// # Invariants
//
// A byte range is recorded in the sidecar only after its bytes are written,
// and a scan reads only recorded ranges whose checksums held: a truncated
// or damaged data file, a lost write after a crash, or a damaged sidecar is
// refetched, never read. Checking reads every cached byte, so it is done
// once per change of the data file: the sidecar keeps a stamp (device,
// inode, size, mtime, ctime) of the file as of its last full check, taken
// only when those times are more than 200 ms old (file times have the
// kernel tick's granularity); while the file matches the stamp, its
// records are trusted without reading them. Any write, truncation or
// change of times changes the ctime and so forces a full check. The sidecar is
// replaced whole by rename. The data file is repaired in place (never
// replaced), so a scan reading it while another process refetches sees the
// same bytes.
//
// Two processes (or goroutines) needing the same missing ranges serialize
// on the fill lock; the second finds them recorded and fetches nothing.
//
// An entry is in use from Materialize until Release (or Close): its use lock
// is held shared, and eviction and Clear, which take it exclusive without
// waiting, skip it. Eviction runs after a fetch, removing least recently
// used entries (sidecar mtime) until the cached bytes are within the bound.
//
// After fetching, the object's ETag is checked again: if it changed the
// call fails with ErrConflict and the entry is dropped; an object shorter
// than its stated size or not a Parquet file fails with ErrDataLoss and
// nothing is kept.
//
// # Caveats
//
// Damage below the file system (bit rot) is not seen while the stamp
// holds; outside Linux the stamp has no ctime, so a writer that restores
// the mtime is not seen either.
// Columns are top-level names: a struct, list or map column is fetched
// whole. A pruned scan's file costs a local copy of the ranges it needs;
// one left by a process that stopped is removed by the next pruned scan of
// the entry, or with the entry. A scan must name every column it reads,
// filters included; DuckDB reading a column that was not materialized
// would decode holes. Encrypted Parquet
// files are not supported. The bound counts cached bytes; an entry larger
// than the bound is kept while in use.
package scancache
