// Package sql is the one reader of DuckDB's parse trees, and turns the text
// of a SQL query into scan plans: the catalog tables it reads (found in
// DuckDB's own parse tree, never by matching text), each resolved to its
// snapshot at a ref, with the columns the query mentions and the data files
// left after pruning by partition values and column statistics.
//
// # Parsing
//
// The parse tree comes from a Parser (runtime/duckdb implements it with
// json_serialize_sql in a scratch DuckDB; this package holds what the tree
// means). Parse reads one SELECT-like statement into a Statement: its table
// references (TableRef, the module's only type for them), the columns it
// mentions, its simple WHERE predicates and its output columns. Analyze is
// Parse for plan time (SQL models and input filters of the planner), which
// also rejects three-part table names.
//
// # Resolution
//
// PlanQuery resolves the references in a catalog.Service and plans each
// table's scan through a catalog.TableScanner, the table format's seam:
// this package never sees the storage layout.
//
// Every BASE_TABLE node is a table reference — in FROM clauses, joins, subqueries, CTE bodies, set
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
// has none. The table format converts constants only where DuckDB
// compares the same values (catalog/iceberg: no float literals, no time
// zones, no >, >=, <> or BETWEEN on floating-point columns, where DuckDB
// orders NaN above every number) and leaves out the other predicates;
// --explain shows those it used. Pruning only drops files: DuckDB evaluates the whole query on the kept
// files, so a filter that is not pushed down costs time, never
// correctness.
//
// # Columns
//
// The columns of a plan are the table's columns that the query mentions
// anywhere (all of them after *, t.* or t as a value). They are reported by
// --explain and passed to the table format's planner; the scan itself exposes
// every column and DuckDB's own projection pushdown reads only those used.
package sql
