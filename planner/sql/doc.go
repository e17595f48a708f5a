// Package sql turns the text of a SQL query into scan plans: the catalog
// tables it reads (found in DuckDB's own parse tree, never by matching
// text), each resolved to its Iceberg snapshot at a ref, with the columns
// the query mentions and the data files left after pruning by partition
// values and column statistics.
//
// # Resolution
//
// The parse tree comes from a Parser (runtime/duckdb implements it with
// json_serialize_sql in a scratch DuckDB). Every BASE_TABLE node is a table
// reference — in FROM clauses, joins, subqueries, CTE bodies, set
// operations, IN/EXISTS/scalar subqueries — except names of CTEs in scope.
// NS.TABLE names a namespace; TABLE alone is looked up in the request's
// namespace. Names match exactly, else case-insensitively (as DuckDB's
// identifiers do). An unknown table fails before anything runs, with the
// closest names as a hint.
//
// # Pruning
//
// A WHERE conjunct of the form col op constant (=, <>, <, <=, >, >=,
// BETWEEN, IN, IS [NOT] NULL) prunes the files of a table it certainly
// applies to: the column is qualified with the reference's alias, or is
// unqualified in a FROM clause of base tables where only that table has
// the column; the reference is joined by inner or cross joins or is the
// preserved side of an outer join. A table read in several places is
// pruned by the OR of each place's filters, and not at all if one place
// has none. Constants are converted only where DuckDB compares the same
// values (no float literals, no time zones, no >, >=, <> or BETWEEN on
// floating-point columns, where DuckDB orders NaN above every number).
// Pruning only drops files: DuckDB evaluates the whole query on the kept
// files, so a filter that is not pushed down costs time, never
// correctness.
//
// # Columns
//
// The columns of a plan are the table's columns that the query mentions
// anywhere (all of them after *, t.* or t as a value). They are reported by
// --explain and passed to iceberg-go's planner; the scan itself exposes
// every column and DuckDB's own projection pushdown reads only those used.
package sql
