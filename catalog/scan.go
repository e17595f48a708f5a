package catalog

import (
	"context"
	"math"
	"strconv"
)

// TableScanner opens table states for reading: the query path plans its
// scans through it, so it never sees the storage layout. catalog/iceberg
// implements it for Iceberg tables in a local warehouse; another layout
// (object storage) is one more implementation wired in the CLI.
type TableScanner interface {
	// OpenScan opens the table state e (the entry of table id at a pinned
	// commit) for scan planning. It reads metadata only. Errors:
	// ErrNotFound when the state's metadata does not exist;
	// ErrInvalidArgument for an entry without a metadata location.
	OpenScan(ctx context.Context, id TableIdent, e TableEntry) (TableScan, error)
}

// TableScan is one opened table state, ready to plan scans of its current
// snapshot.
type TableScan interface {
	// SnapshotID is the current snapshot, 0 for a table without one.
	SnapshotID() int64
	// Schema is the table's current schema: its top-level columns, in
	// order, with the catalog's type names (TableInfo.Schema's).
	Schema() []Column
	// SchemaEvolved reports whether the table has had other schemas, so
	// older data files may lack columns or hold narrower types.
	SchemaEvolved() bool
	// PlanFiles plans a scan of the current snapshot. Errors:
	// ErrFailedPrecondition when a kept file cannot be read by queries
	// (row-level deletes, not Parquet); ErrInvalidArgument when the
	// options name columns the table does not have.
	PlanFiles(ctx context.Context, opts ScanOptions) (*ScanPlan, error)
}

// ScanOptions narrow a scan plan.
type ScanOptions struct {
	// Columns the reader needs; nil means all.
	Columns []string
	// Filter is a row filter in disjunctive normal form: a row may match
	// when every predicate of one of the groups holds. Nil means every
	// row. Files whose partition values or column statistics prove that
	// no row matches are pruned; rows of kept files are not filtered (the
	// reader applies its own predicates). A predicate the format cannot
	// evaluate exactly as the query engine would is left out; a group left
	// with none prunes nothing, and neither does the filter.
	Filter [][]Predicate
}

// ScanPlan is the outcome of planning: the data files to read.
type ScanPlan struct {
	SnapshotID int64
	// Files are the local paths of the kept data files, sorted.
	Files []string
	// Records is the row count of the kept files.
	Records int64
	// TotalFiles is the number of live data files of the snapshot, so
	// TotalFiles - len(Files) were pruned.
	TotalFiles int
	// Cache says how the kept files of a remote warehouse were fetched
	// into the local scan cache ("hit, 19.7 MB cached", "miss, fetched
	// …"); empty for a local warehouse.
	Cache string
	// Filter is the part of ScanOptions.Filter that pruned: per group, the
	// predicates used, in order. Nil when the filter pruned nothing.
	Filter [][]Predicate
}

// Predicate is a simple row condition: Column Op Values.
type Predicate struct {
	// Column is the column's name as the table's schema spells it.
	Column string
	// Op is one of = <> < <= > >= between in isnull notnull. between has
	// two values (low, high), in one or more, isnull and notnull none.
	Op     string
	Values []Literal
}

// Literal is a constant of a query, typed as the query engine (DuckDB)
// typed it.
type Literal struct {
	// Type is the engine's type name: BOOLEAN, TINYINT, SMALLINT,
	// INTEGER, BIGINT, HUGEINT, FLOAT, DOUBLE, DECIMAL, VARCHAR, DATE,
	// TIME, TIMESTAMP or TIMESTAMPTZ.
	Type string
	// Text is the literal as text (strings unquoted); for DECIMAL the
	// unscaled integer.
	Text string
	// Scale is the scale of a DECIMAL literal.
	Scale int
}

// Float returns a numeric literal as a float64.
func (l Literal) Float() (float64, bool) {
	switch l.Type {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT":
		f, err := strconv.ParseFloat(l.Text, 64)
		return f, err == nil
	case "DECIMAL":
		f, err := strconv.ParseFloat(l.Text, 64)
		return f / math.Pow10(l.Scale), err == nil
	}
	return 0, false
}

// Int returns an integer literal.
func (l Literal) Int() (int64, bool) {
	switch l.Type {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT":
		n, err := strconv.ParseInt(l.Text, 10, 64)
		return n, err == nil
	}
	return 0, false
}
