// Package iceberg implements catalog.TableFormat with apache/iceberg-go over
// a local warehouse directory: importing Parquet and CSV files into Iceberg
// tables, describing table states, merging two append-only histories and
// diffing schemas.
//
// # Layout
//
//	<warehouse>/<namespace>/<table>-<uuid>/     one directory per table creation
//	    metadata/<version>-<uuid>.metadata.json  table states (uncompressed JSON)
//	    metadata/*.avro                          manifest lists and manifests
//	    data/<...>.parquet                       data files
//
// A table gets a new directory each time it is created, so two branches can
// create a table of the same name independently.
//
// # Invariants
//
// Nothing is updated in place and nothing is deleted. Every write produces
// new files only (the file system refuses to overwrite), and only files the
// same operation created may be removed (its own output after a failure).
// Old metadata, manifests and data files stay, because other branches and
// commits reference them; iceberg-go's delete-after-commit is off.
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
// footer, or a full pass over a CSV file that checks its syntax and infers
// column types. A file whose columns do not match the table's (by name; each
// type equal or losslessly widened) fails the whole import. A Parquet file
// whose Arrow schema is exactly the table's is copied byte for byte into an
// unpartitioned table; other files stream through iceberg-go's writer in
// bounded memory. Each import is one snapshot, whose summary records the
// files read (PropImportSources) so that a later append skips them.
//
// # Caveats
//
// Only flat schemas are imported (no list, map or struct columns). Table
// locations are local paths. MergeAppends compares data-file sets: each
// side must keep every data file of base and add no delete files. A side
// that removed a whole file added after base is not detected, so if the
// other side also holds that file (through an earlier shared merge) the
// merge brings it back.
package iceberg
