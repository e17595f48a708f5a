package duckdb

// A build without -tags duckdb_arrow stops at arrowtag's one error, which
// names the tag, before this package's undefined bindings.
import _ "github.com/lakehouse-dev/lakehouse/runtime/duckdb/internal/arrowtag"
