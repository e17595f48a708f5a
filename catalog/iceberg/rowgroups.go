package iceberg

import (
	"bytes"
	"cmp"
	"strings"

	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/apache/iceberg-go"
	"github.com/lakehouse-dev/lakehouse/catalog"
)

// rowGroupFilter rules out the row groups of a data file whose Parquet
// statistics prove that no row matches a scan's filter, so that the scan
// cache fetches only the others. The filter is an OR of ANDs of the
// predicates tableScan.filter translated faithfully; a predicate it cannot
// evaluate on statistics is left out of its group (which then rules out
// less), and a group left empty keeps every row group.
//
// Only exact comparisons are evaluated: integers, dates, timestamps in
// microseconds and strings (byte order, as DuckDB compares VARCHAR), and
// IS [NOT] NULL on any column. Floats (NaN), decimals and anything whose
// file type differs from the table's are never pruned on.
type rowGroupFilter struct {
	groups [][]rgPredicate
	// byPosition: files are read by column position (a table with one
	// schema), else by name.
	byPosition bool
}

// rgPredicate is one predicate on a top-level column.
type rgPredicate struct {
	pos  int // among the table's top-level fields
	name string
	typ  iceberg.Type
	op   string
	lits []iceberg.Literal
}

// newRowGroupFilter returns the filter of groups over a table of schema sc,
// nil when it can rule nothing out.
func newRowGroupFilter(sc *iceberg.Schema, groups [][]catalog.Predicate, byPosition bool) *rowGroupFilter {
	if len(groups) == 0 {
		return nil
	}
	f := &rowGroupFilter{byPosition: byPosition}
	for _, g := range groups {
		var preds []rgPredicate
		for _, p := range g {
			if rp, ok := newRGPredicate(sc, p); ok {
				preds = append(preds, rp)
			}
		}
		if len(preds) == 0 {
			return nil
		}
		f.groups = append(f.groups, preds)
	}
	return f
}

func newRGPredicate(sc *iceberg.Schema, p catalog.Predicate) (rgPredicate, bool) {
	for i, field := range sc.Fields() {
		if field.Name != p.Column {
			continue
		}
		rp := rgPredicate{pos: i, name: field.Name, typ: field.Type, op: p.Op}
		switch p.Op {
		case "isnull", "notnull":
			return rp, true
		case "=", "<>", "<", "<=", ">", ">=", "between", "in":
		default:
			return rgPredicate{}, false
		}
		switch field.Type.(type) {
		case iceberg.Int32Type, iceberg.Int64Type, iceberg.DateType, iceberg.TimestampType, iceberg.TimestampTzType, iceberg.StringType:
		default:
			return rgPredicate{}, false
		}
		for _, v := range p.Values {
			l, ok := literalFor(v, field.Type)
			if !ok {
				return rgPredicate{}, false
			}
			rp.lits = append(rp.lits, l)
		}
		if len(rp.lits) == 0 || p.Op == "between" && len(rp.lits) != 2 {
			return rgPredicate{}, false
		}
		return rp, true
	}
	return rgPredicate{}, false
}

// keep implements scancache.Scan.RowGroups.
func (f *rowGroupFilter) keep(md *metadata.FileMetaData) []bool {
	keep := make([]bool, md.NumRowGroups())
	for rg := range keep {
		rgm := md.RowGroup(rg)
		for _, g := range f.groups {
			if !f.rulesOut(md, rgm, g) {
				keep[rg] = true
				break
			}
		}
	}
	return keep
}

// rulesOut reports whether some predicate of the AND group g is false for
// every row of the row group.
func (f *rowGroupFilter) rulesOut(md *metadata.FileMetaData, rgm *metadata.RowGroupMetaData, g []rgPredicate) bool {
	for _, p := range g {
		leaf := f.leaf(md.Schema, p)
		if leaf < 0 {
			continue
		}
		cc, err := rgm.ColumnChunk(leaf)
		if err != nil {
			continue
		}
		if p.rulesOut(cc, md.Schema.Column(leaf)) {
			return true
		}
	}
	return false
}

// leaf is the leaf column of the file that the scan reads for p's column,
// -1 when it is not a primitive top-level column of the file.
func (f *rowGroupFilter) leaf(sc *schema.Schema, p rgPredicate) int {
	root := sc.Root()
	var node schema.Node
	if f.byPosition {
		if p.pos < root.NumFields() {
			node = root.Field(p.pos)
		}
	} else {
		for i := range root.NumFields() {
			if strings.EqualFold(root.Field(i).Name(), p.name) {
				node = root.Field(i)
				break
			}
		}
	}
	if node == nil || node.Type() != schema.Primitive {
		return -1
	}
	return sc.ColumnIndexByNode(node)
}

// rulesOut reports whether the chunk's statistics prove p false for
// every row.
func (p rgPredicate) rulesOut(cc *metadata.ColumnChunkMetaData, col *schema.Column) bool {
	st, err := cc.Statistics()
	if err != nil || st == nil {
		return false
	}
	switch p.op {
	case "isnull":
		return st.HasNullCount() && st.NullCount() == 0
	case "notnull":
		return st.HasNullCount() && cc.NumValues() > 0 && st.NullCount() == cc.NumValues()
	}
	if st.HasNullCount() && cc.NumValues() > 0 && st.NullCount() == cc.NumValues() {
		return true // all NULL: no comparison holds
	}
	if !st.HasMinMax() {
		return false
	}
	compare, ok := comparer(st, col, p.typ)
	if !ok {
		return false
	}
	// compare(l) compares l with the chunk's minimum (lo) and maximum (hi).
	below := func(l iceberg.Literal) bool { lo, _ := compare(l); return lo < 0 }  // l < min
	above := func(l iceberg.Literal) bool { _, hi := compare(l); return hi > 0 }  // l > max
	atMin := func(l iceberg.Literal) bool { lo, _ := compare(l); return lo <= 0 } // l <= min
	atMax := func(l iceberg.Literal) bool { _, hi := compare(l); return hi >= 0 } // l >= max
	l := p.lits[0]
	switch p.op {
	case "=":
		return below(l) || above(l)
	case "<>":
		lo, hi := compare(l)
		return lo == 0 && hi == 0
	case "<":
		return atMin(l)
	case "<=":
		return below(l)
	case ">":
		return atMax(l)
	case ">=":
		return above(l)
	case "between":
		return above(l) || below(p.lits[1])
	case "in":
		for _, l := range p.lits {
			if !below(l) && !above(l) {
				return false
			}
		}
		return true
	}
	return false
}

// comparer returns a function comparing a literal of type t with the
// statistics' minimum and maximum (-1, 0, +1 each); ok is false when the
// file's type is not exactly t's.
func comparer(st metadata.TypedStatistics, col *schema.Column, t iceberg.Type) (func(iceberg.Literal) (lo, hi int), bool) {
	ints := func(min, max int64, val func(iceberg.Literal) (int64, bool)) func(iceberg.Literal) (int, int) {
		return func(l iceberg.Literal) (int, int) {
			v, ok := val(l)
			if !ok {
				return 1, -1 // inside the range: rules nothing out
			}
			return cmp.Compare(v, min), cmp.Compare(v, max)
		}
	}
	lt := col.LogicalType()
	switch t.(type) {
	case iceberg.Int32Type, iceberg.DateType:
		s, ok := st.(*metadata.Int32Statistics)
		if !ok {
			return nil, false
		}
		if _, isDate := t.(iceberg.DateType); isDate != isDateLogical(lt) {
			return nil, false
		}
		return ints(int64(s.Min()), int64(s.Max()), func(l iceberg.Literal) (int64, bool) {
			switch v := l.(type) {
			case iceberg.Int32Literal:
				return int64(v), true
			case iceberg.DateLiteral:
				return int64(v), true
			}
			return 0, false
		}), true
	case iceberg.Int64Type, iceberg.TimestampType, iceberg.TimestampTzType:
		s, ok := st.(*metadata.Int64Statistics)
		if !ok {
			return nil, false
		}
		ts, isTS := lt.(schema.TimestampLogicalType)
		if _, isInt := t.(iceberg.Int64Type); isInt == isTS || isTS && ts.TimeUnit() != schema.TimeUnitMicros {
			return nil, false
		}
		return ints(s.Min(), s.Max(), func(l iceberg.Literal) (int64, bool) {
			switch v := l.(type) {
			case iceberg.Int64Literal:
				return int64(v), true
			case iceberg.TimestampLiteral:
				return int64(v), true
			}
			return 0, false
		}), true
	case iceberg.StringType:
		s, ok := st.(*metadata.ByteArrayStatistics)
		if !ok {
			return nil, false
		}
		min, max := []byte(s.Min()), []byte(s.Max())
		return func(l iceberg.Literal) (int, int) {
			v, ok := l.(iceberg.StringLiteral)
			if !ok {
				return 1, -1
			}
			return bytes.Compare([]byte(v), min), bytes.Compare([]byte(v), max)
		}, true
	}
	return nil, false
}

func isDateLogical(lt schema.LogicalType) bool {
	_, ok := lt.(schema.DateLogicalType)
	return ok
}
