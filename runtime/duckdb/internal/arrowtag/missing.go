//go:build !duckdb_arrow

package arrowtag

// This line does not compile on purpose: the error quotes the string.
var _ int = "lakehouse builds only with -tags duckdb_arrow (see README.md)"
