// Package arrowtag turns a build without -tags duckdb_arrow into one error
// that names the tag. DuckDB's Arrow C API, which runtime/duckdb streams
// results with, is compiled into duckdb-go-bindings only under that tag;
// without it the build would stop at a dozen "undefined: bindings.…"
// errors that do not say what is missing.
//
// runtime/duckdb imports this package, so the go command compiles it first
// and reports only its error.
package arrowtag
