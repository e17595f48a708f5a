// Package iceberg implements catalog.TableFormat with apache/iceberg-go over
// a warehouse (catalog/warehouse: a local directory or S3): importing Parquet, CSV and Arrow IPC files
// into Iceberg tables, describing table states, merging two append-only
// histories and diffing schemas.
//
// # Layout
//
//	<warehouse>/<namespace>/<table>-<uuid>/     one directory per table creation
//	    metadata/<version>-<uuid>.metadata.json  table states (uncompressed JSON)
//	    metadata/*.avro                          manifest lists and manifests
//	    data/<...>.parquet                       data files
//
// A table gets a new directory each time it is created, so two branches can
// create a table of the same name independently. Every read and write goes
// through the warehouse Storage (writeOnceFS adapts it to iceberg-go's io
// interfaces); locations in metadata are Storage.URI of a key: absolute
// paths for a local warehouse (under the root it had when the catalog was
// created, mapped to where it is now), s3://bucket/prefix/... on S3.
//
// Scans return local files: the Options.Fetcher materializes a data file
// (the file itself in a local warehouse; by default a whole-object
// download into the cache directory, keyed by key and ETag, on S3), since
// the DuckDB that reads them opens local paths only. A StatsFetcher (the
// scan cache, CacheFetcher) fetches only the columns a scan reads, and
// only the row groups whose Parquet statistics do not rule out the scan's
// filter (rowGroupFilter); under a PlanOnly context it reads footers only.
//
// # Invariants
//
// Nothing is updated in place, and no table operation deletes. Every write
// produces new files only (the file system refuses to overwrite), and only
// files the same operation created may be removed (its own output after a
// failure). Old metadata, manifests and data files stay, because other
// branches and commits reference them; iceberg-go's delete-after-commit is
// off. Only the garbage collector (catalog.Local.GC) deletes: the files
// ReferencedFiles (gc.go) does not report for any kept state, through
// DirObjects, the warehouse as catalog.Objects.
//
// Every metadata file is one ref's view of the table, whichever branch
// wrote it: its refs hold only "main", at its current snapshot, and its
// snapshots, snapshot log and metadata log are its own lineage. Branches
// that fork a table write files of the same version number, told apart
// by the uuid in the name; the lakehouse catalog says which file a ref
// (or commit) holds. A merge that combines two sides' appends writes a
// new snapshot on ours, whose summary names the snapshot of theirs it
// replaces (PropMergedFrom): theirs' own snapshots are not in the merged
// metadata, since Iceberg snapshot sequence numbers only grow along one
// lineage.
//
// A write produces a new metadata file and returns its catalog.TableEntry;
// it becomes visible only when the lakehouse catalog commits that entry.
// Writes go through a staging table.CatalogIO whose CommitTable validates
// iceberg-go's requirements against the state the write started from,
// applies the updates and writes the next metadata file.
//
// # Imports
//
// Import reads every file's schema before writing any data: a Parquet
// footer, a full pass over a CSV file that checks its syntax and infers
// column types, or an Arrow IPC file's schema and record batch headers
// (internal/arrowipc maps and checks the file; see ipc.go). A file whose
// columns do not match the table's (by name; each type equal or losslessly
// widened) fails the whole import, except in a replace, which gives the
// table the first file's schema (columns of the same name keep their field
// ids) in the same metadata file as the replacing snapshot, and keeps the
// partition spec while its source columns are there. A Parquet file whose Arrow schema is
// exactly the table's is copied byte for byte into an unpartitioned table;
// other files stream through iceberg-go's writer in bounded memory. Each
// import is one snapshot, whose summary records the files read
// (PropImportSources) so that a later append skips them.
//
// Modes: append adds files (snapshot "append"); replace removes every data
// file ("overwrite"); overwrite-partitions removes the data files whose
// partition under the current spec holds any new row ("overwrite", or
// "append" when every new row falls in a new partition), and is replace on
// an unpartitioned table.
//
// # Caveats
//
// Only flat schemas are imported (no list, map or struct columns). The
// default Fetcher downloads whole data files, whatever columns a scan
// reads. s3:// import sources are downloaded to a temporary directory
// before they are read. MergeAppends compares data-file sets: each
// side must keep every data file of base and add no delete files. A side
// that removed a whole file added after base is not detected, so if the
// other side also holds that file (through an earlier shared merge) the
// merge brings it back. Replace and overwrite-partitions remove data files
// only: delete files of the table (none of this package's writes make
// them) stay listed. overwrite-partitions refuses a table whose live files
// were written under an older partition spec (replace never leaves such
// files), and never changes the schema of a partitioned table.
package iceberg
