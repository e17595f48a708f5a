package iceberg

import (
	"context"
	"errors"
	iofs "io/fs"
	"os"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

var _ catalog.TableScanner = (*Format)(nil)

// OpenScan implements catalog.TableScanner: the table state e opened for
// scan planning (see the package function OpenScan).
func (f *Format) OpenScan(ctx context.Context, id catalog.TableIdent, e catalog.TableEntry) (catalog.TableScan, error) {
	t, err := f.openScan(ctx, id, e)
	if err != nil {
		return nil, err
	}
	return tableScan{t}, nil
}

// tableScan adapts a ScanTable to catalog.TableScan: catalog predicates
// become iceberg-go expressions here.
type tableScan struct{ t *ScanTable }

func (s tableScan) SnapshotID() int64        { return s.t.SnapshotID() }
func (s tableScan) Schema() []catalog.Column { return columnsOf(s.t.Schema()) }
func (s tableScan) SchemaEvolved() bool      { return s.t.SchemaCount() > 1 }

// PlanFiles implements catalog.TableScan with ScanTable.PlanFiles, the
// filter translated by icebergFilter.
func (s tableScan) PlanFiles(ctx context.Context, opts catalog.ScanOptions) (*catalog.ScanPlan, error) {
	filter, used := s.filter(opts.Filter)
	p, err := s.t.PlanFiles(ctx, ScanOptions{Columns: opts.Columns, Filter: filter, RowGroups: used})
	if err != nil {
		return nil, err
	}
	plan := &catalog.ScanPlan{SnapshotID: p.SnapshotID, Files: p.Files, Records: p.Records, TotalFiles: p.TotalFiles, Filter: used}
	if p.Fetch != nil {
		plan.Cache = p.Fetch.String()
	}
	return plan, nil
}

// filter translates an OR of ANDs of predicates, leaving out those that do
// not translate faithfully; nil when some group keeps none.
func (s tableScan) filter(groups [][]catalog.Predicate) (iceberg.BooleanExpression, [][]catalog.Predicate) {
	var ors []iceberg.BooleanExpression
	var used [][]catalog.Predicate
	sc := s.t.Schema()
	for _, g := range groups {
		var ands []iceberg.BooleanExpression
		var kept []catalog.Predicate
		for _, p := range g {
			field, ok := sc.FindFieldByName(p.Column)
			if !ok || !isTopLevel(sc, field.ID) {
				continue
			}
			e, ok := icebergFilter(p, field)
			if !ok {
				continue
			}
			ands = append(ands, e)
			kept = append(kept, p)
		}
		if len(ands) == 0 {
			return nil, nil
		}
		e := ands[0]
		for _, a := range ands[1:] {
			e = iceberg.NewAnd(e, a)
		}
		ors = append(ors, e)
		used = append(used, kept)
	}
	if len(ors) == 0 {
		return nil, nil
	}
	e := ors[0]
	for _, o := range ors[1:] {
		e = iceberg.NewOr(e, o)
	}
	return e, used
}

// icebergFilter converts a predicate on field f into an iceberg-go
// expression for file pruning. ok is false when the conversion is not
// certainly faithful to DuckDB's semantics (type coercions, time zones,
// NaN, inexact numbers): such a predicate prunes nothing, DuckDB still
// applies it to the rows.
func icebergFilter(p catalog.Predicate, field iceberg.NestedField) (iceberg.BooleanExpression, bool) {
	ref := iceberg.Reference(field.Name)
	switch p.Op {
	case "isnull":
		return iceberg.IsNull(ref), true
	case "notnull":
		return iceberg.NotNull(ref), true
	}
	if _, isFloat := field.Type.(iceberg.Float64Type); isFloat {
		switch p.Op {
		case ">", ">=", "<>", "between":
			// DuckDB orders NaN above every number (NaN > 1 is true);
			// Iceberg's bounds leave NaN out, so these could prune files
			// whose NaN rows DuckDB returns.
			return nil, false
		}
	}
	lits := make([]iceberg.Literal, 0, len(p.Values))
	for _, c := range p.Values {
		l, ok := literalFor(c, field.Type)
		if !ok {
			return nil, false
		}
		lits = append(lits, l)
	}
	if len(lits) == 0 || p.Op == "between" && len(lits) != 2 {
		return nil, false
	}
	switch p.Op {
	case "=":
		return iceberg.LiteralPredicate(iceberg.OpEQ, ref, lits[0]), true
	case "<>":
		return iceberg.LiteralPredicate(iceberg.OpNEQ, ref, lits[0]), true
	case "<":
		return iceberg.LiteralPredicate(iceberg.OpLT, ref, lits[0]), true
	case "<=":
		return iceberg.LiteralPredicate(iceberg.OpLTEQ, ref, lits[0]), true
	case ">":
		return iceberg.LiteralPredicate(iceberg.OpGT, ref, lits[0]), true
	case ">=":
		return iceberg.LiteralPredicate(iceberg.OpGTEQ, ref, lits[0]), true
	case "between":
		return iceberg.NewAnd(
			iceberg.LiteralPredicate(iceberg.OpGTEQ, ref, lits[0]),
			iceberg.LiteralPredicate(iceberg.OpLTEQ, ref, lits[1])), true
	case "in":
		return iceberg.SetPredicate(iceberg.OpIn, ref, lits), true
	}
	return nil, false
}

// literalFor converts a query literal to a literal of the column type t,
// only where DuckDB would compare the same values.
func literalFor(c catalog.Literal, t iceberg.Type) (iceberg.Literal, bool) {
	switch t.(type) {
	case iceberg.Int32Type, iceberg.Int64Type:
		n, ok := c.Int()
		if !ok {
			return nil, false
		}
		if _, is32 := t.(iceberg.Int32Type); is32 {
			if n < -1<<31 || n > 1<<31-1 {
				return nil, false
			}
			return iceberg.NewLiteral(int32(n)), true
		}
		return iceberg.NewLiteral(n), true
	case iceberg.Float64Type:
		if c.Type == "DOUBLE" || c.Type == "FLOAT" {
			return nil, false // NaN and rounding of float literals: leave to DuckDB
		}
		f, ok := c.Float()
		if !ok {
			return nil, false
		}
		return iceberg.NewLiteral(f), true
	case iceberg.StringType:
		if c.Type != "VARCHAR" {
			return nil, false
		}
		return iceberg.NewLiteral(c.Text), true
	case iceberg.BooleanType:
		if c.Type != "BOOLEAN" {
			return nil, false
		}
		switch strings.ToLower(c.Text) {
		case "t", "true":
			return iceberg.NewLiteral(true), true
		case "f", "false":
			return iceberg.NewLiteral(false), true
		}
	case iceberg.DateType:
		if c.Type != "DATE" && c.Type != "VARCHAR" {
			return nil, false
		}
		d, err := time.Parse("2006-01-02", c.Text)
		if err != nil {
			return nil, false
		}
		return iceberg.NewLiteral(iceberg.Date(d.Unix() / 86400)), true
	case iceberg.TimestampType:
		if c.Type != "TIMESTAMP" && c.Type != "DATE" && c.Type != "VARCHAR" {
			return nil, false
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999", "2006-01-02"} {
			if ts, err := time.Parse(layout, c.Text); err == nil {
				return iceberg.NewLiteral(iceberg.Timestamp(ts.UnixMicro())), true
			}
		}
	case iceberg.TimestampTzType:
		// Only with an explicit offset: otherwise DuckDB reads the
		// literal in the session's time zone.
		if c.Type != "TIMESTAMPTZ" && c.Type != "VARCHAR" {
			return nil, false
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999Z07:00", "2006-01-02T15:04:05.999999Z07:00",
			"2006-01-02 15:04:05.999999Z07", "2006-01-02T15:04:05.999999Z07"} {
			if ts, err := time.Parse(layout, c.Text); err == nil {
				return iceberg.NewLiteral(iceberg.Timestamp(ts.UnixMicro())), true
			}
		}
	}
	return nil, false
}

// StatFile returns the size of the file at a location of table metadata
// (for the catalog's doctor): ErrNotFound if it is missing.
func (f *Format) StatFile(ctx context.Context, loc string) (int64, error) {
	fs := newWriteOnceFS(ctx, f.opts.Storage)
	key, local, err := fs.key(loc)
	if err != nil {
		return 0, err
	}
	if local != "" {
		info, err := os.Stat(local)
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return 0, errdefs.New(errdefs.ErrNotFound, "%s does not exist", loc)
			}
			return 0, err
		}
		return info.Size(), nil
	}
	size, _, err := f.opts.Storage.Stat(ctx, key)
	return size, err
}
