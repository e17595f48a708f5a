// Package duckdb is the one package of lakehouse that talks to DuckDB
// (github.com/duckdb/duckdb-go and its C bindings). The rest of the tree
// uses the small surface here:
//
//   - Engine: a long-lived scratch DuckDB that serializes SQL with DuckDB's
//     own parser (json_serialize_sql); Parser is one opened on first use.
//     It never executes user SQL. What the parse tree means (tables read,
//     output columns, filters) is planner/sql's to read: this package
//     imports nothing of the planner.
//   - Pool: fresh DBs opened ahead of demand (opening DuckDB is ~7 ms of
//     CPU, most of a tiny query's time), each handed to one query by Get,
//     so isolation is that of Open; it starts once a process runs a second
//     query, closes idle DBs after 30s, and Close closes the rest. A DB
//     whose query ended cleanly may be Put back under a key naming its
//     views and allowed files, and Take hands it to the next query with
//     the same key only: a query is one SELECT in a locked DB, which
//     leaves the DB as it found it, so that query sees what a fresh DB
//     prepared alike shows (the reader's interrupt watcher has stopped by
//     then, so a late cancel cannot reach the next query).
//   - DB: an in-memory DuckDB for one query at a time. The caller registers views
//     over the planned Parquet files (CreateView), then Lock switches the
//     sandbox on — external access off, only the planned files readable,
//     configuration locked — and Query runs the user's SQL and streams the
//     result as Arrow record batches, or CopyParquet has DuckDB write it
//     as a Parquet file itself (`lakehouse query -O parquet`).
//
// # Output files
//
// A DB opened with Options.OutputDir may write in that one directory, and
// nowhere else: Lock puts it in allowed_directories before the
// configuration is locked, so no statement can widen it. The caller
// creates it private (0700) and empty for one query, beside the target
// file, and renames the file out; user SQL never names it: CopyParquet
// builds the COPY around the user's SELECT (as a temporary view) and
// checks that each statement it runs is exactly one of the kind it built.
// DuckDB's writer runs on all threads, several times faster than
// arrow-go's single-threaded one; CopyParquet converts the columns whose
// Parquet form would differ from what the Arrow path writes (intervals,
// HUGEINT, UUID, JSON) and refuses results it cannot match
// (ErrCopyUnsupported), which the caller writes from the Arrow stream.
//
// # Limits
//
// Every DB gets a memory limit: the caller's (a SQL model's memory=), else
// LAKEHOUSE_DUCKDB_MEMORY, and never more than 80% of the machine's
// available memory (MemAvailable); its thread count is the caller's, else
// LAKEHOUSE_DUCKDB_THREADS, else one per core, or one less for a query
// that only streams rows to a reader (StreamThreads). Cancelling the
// context of Query, CopyParquet or LoadArrow interrupts the statement
// (duckdb_interrupt), also while its result streams, and again every 50ms
// until it stops (DuckDB clears the flag when a statement starts): Ctrl-C
// or `runs cancel` stops a large aggregate or a SQL model at once.
//
// # Streaming
//
// Query executes with DuckDB's streaming result
// (duckdb_pending_prepared_streaming) and converts each data chunk with
// DuckDB's Arrow C API (duckdb_data_chunk_to_arrow, the conversion
// duckdb-go's Arrow reader uses). duckdb-go's own Arrow.QueryContext
// materializes the whole result inside DuckDB before the first batch — about
// 450 MB for a 10M-row, 4-column result here — so large results would not
// stay in bounded memory.
//
// # Caveats
//
// Views read Parquet with DuckDB's read_parquet, which does its own
// projection and filter pushdown; duckdb-go's Arrow views (RegisterView)
// are not used: they can read wrong columns and drop filters (duckdb-go
// issues #24, #28). Data files must be local paths.
package duckdb
