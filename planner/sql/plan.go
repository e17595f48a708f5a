package sql

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/suggest"
)

// Request is a query to plan.
type Request struct {
	SQL string
	// Ref is the catalog state the query reads.
	Ref catalog.Ref
	// Namespace qualifies table names given without one; default
	// catalog.DefaultNamespace.
	Namespace catalog.Namespace
}

// Plan is a planned query: the resolved commit and one scan per table.
type Plan struct {
	SQL       string
	Ref       catalog.Ref
	Commit    *catalog.Commit
	Namespace catalog.Namespace
	// Tables are the distinct tables read, sorted by name.
	Tables []*TableScan
	// Statement is the analysed parse tree.
	Statement *Statement
}

// TableScan is the scan of one table.
type TableScan struct {
	Ident      catalog.TableIdent
	SnapshotID int64
	// Schema is the table's current schema, in order, with the catalog's
	// type names.
	Schema []catalog.Column
	// SchemaEvolved is set when the table has had other schemas, so older
	// files may lack columns or hold narrower types.
	SchemaEvolved bool
	// Columns are the columns the query mentions (nil: all).
	Columns []string
	// Filters are the pushed-down predicates as text (ANDed; the OR of
	// several references' filters is one entry).
	Filters []string
	// Files are the kept data files (local paths, sorted).
	Files      []string
	TotalFiles int
	Records    int64
	// Cache says how the files of a remote warehouse were fetched into
	// the scan cache; empty for a local warehouse.
	Cache string
}

// PlanQuery parses req.SQL with p, resolves its tables at req.Ref in svc
// and plans their scans through scans. Errors: ErrInvalidArgument (a *SyntaxError) for SQL that does not
// parse or is not a query; ErrNotFound for an unknown ref, namespace or
// table (with close matches).
func PlanQuery(ctx context.Context, p Parser, svc catalog.Service, scans catalog.TableScanner, req Request) (*Plan, error) {
	st, err := Parse(ctx, p, req.SQL)
	if err != nil {
		return nil, err
	}
	ns := req.Namespace
	if ns == "" {
		ns = catalog.DefaultNamespace
	}
	commit, err := svc.Resolve(ctx, req.Ref)
	if err != nil {
		return nil, err
	}
	plan := &Plan{SQL: req.SQL, Ref: req.Ref, Commit: commit, Namespace: ns, Statement: st}
	if len(st.Tables) == 0 {
		return plan, nil
	}
	// Pin the commit: a branch head that moves meanwhile does not mix states.
	pinned := catalog.Ref{Commit: string(commit.ID)}
	all, err := svc.ListTables(ctx, pinned, "")
	if err != nil {
		return nil, err
	}
	idents, err := resolveTables(req.SQL, st, all, ns, req.Ref)
	if err != nil {
		return nil, err
	}
	byIdent := map[catalog.TableIdent]*TableScan{}
	tables := map[catalog.TableIdent]catalog.TableScan{}
	for _, id := range idents {
		if byIdent[id] != nil {
			continue
		}
		entry, _, err := svc.TableEntry(ctx, pinned, id)
		if err != nil {
			return nil, err
		}
		t, err := scans.OpenScan(ctx, id, entry)
		if err != nil {
			return nil, err
		}
		tables[id] = t
		ts := &TableScan{Ident: id, SnapshotID: t.SnapshotID(), Schema: t.Schema(), SchemaEvolved: t.SchemaEvolved()}
		byIdent[id] = ts
		plan.Tables = append(plan.Tables, ts)
	}
	sort.Slice(plan.Tables, func(i, j int) bool { return plan.Tables[i].Ident.Less(plan.Tables[j].Ident) })

	for _, ts := range plan.Tables {
		ts.Columns = neededColumns(st, ts, idents)
		filter := tableFilter(st, ts, idents, byIdent)
		plan, err := tables[ts.Ident].PlanFiles(ctx, catalog.ScanOptions{Columns: nonEmpty(ts.Columns), Filter: filter})
		if err != nil {
			return nil, err
		}
		ts.Filters = filterTexts(plan.Filter)
		ts.Files, ts.TotalFiles, ts.Records, ts.Cache = plan.Files, plan.TotalFiles, plan.Records, plan.Cache
	}
	return plan, nil
}

func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// resolveTables maps every reference of st to a catalog table, in order.
func resolveTables(sql string, st *Statement, all []catalog.TableSummary, ns catalog.Namespace, ref catalog.Ref) ([]catalog.TableIdent, error) {
	exact := map[catalog.TableIdent]bool{}
	folded := map[string][]catalog.TableIdent{}
	var names []string
	for _, t := range all {
		id := catalog.TableIdent{Namespace: t.Namespace, Name: t.Name}
		exact[id] = true
		k := strings.ToLower(id.String())
		folded[k] = append(folded[k], id)
		names = append(names, id.String())
	}
	out := make([]catalog.TableIdent, len(st.Tables))
	for i, r := range st.Tables {
		if r.Catalog != "" {
			return nil, errdefs.WithHint(errdefs.ErrNotFound, "name tables as TABLE or NAMESPACE.TABLE",
				"unknown table %s.%s.%s%s", r.Catalog, r.Schema, r.Name, at(sql, r.Pos))
		}
		if _, err := catalog.ParseTableIdent(r.Name, catalog.DefaultNamespace); err != nil || strings.Contains(r.Name, ".") {
			return nil, errdefs.WithHint(errdefs.ErrNotFound, "queries read catalog tables only, not files",
				"unknown table %q%s", r.Name, at(sql, r.Pos))
		}
		want := catalog.TableIdent{Namespace: catalog.Namespace(r.Schema), Name: r.Name}
		if r.Schema == "" {
			want.Namespace = ns
		}
		if exact[want] {
			out[i] = want
			continue
		}
		if ids := folded[strings.ToLower(want.String())]; len(ids) == 1 {
			out[i] = ids[0]
			continue
		}
		return nil, unknownTable(want, names, ref, at(sql, r.Pos))
	}
	return out, nil
}

// at renders a position in sql as " (line L, column C)".
func at(sql string, pos int) string {
	if pos < 0 || pos > len(sql) {
		return ""
	}
	line, col, _ := lineCol(sql, pos)
	return fmt.Sprintf(" (line %d, column %d)", line, col)
}

// unknownTable is the ErrNotFound error for a reference to a missing table,
// naming up to three close matches.
func unknownTable(want catalog.TableIdent, names []string, ref catalog.Ref, where string) error {
	type cand struct {
		name string
		d    int
	}
	var cands []cand
	w := strings.ToLower(want.String())
	limit := max(2, len(w)/3)
	for _, n := range names {
		d := suggest.Distance(w, strings.ToLower(n))
		if dn := suggest.Distance(strings.ToLower(want.Name), strings.ToLower(n[strings.IndexByte(n, '.')+1:])); dn < d {
			d = dn // same name in another namespace
		}
		if d <= limit {
			cands = append(cands, cand{n, d})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].d != cands[j].d {
			return cands[i].d < cands[j].d
		}
		return cands[i].name < cands[j].name
	})
	hint := fmt.Sprintf("list the tables with `lakehouse table ls -r %s`", ref)
	if len(cands) > 0 {
		var ns []string
		for i := 0; i < len(cands) && i < 3; i++ {
			ns = append(ns, cands[i].name)
		}
		hint = "did you mean " + strings.Join(ns, ", ") + "?"
	}
	return errdefs.WithHint(errdefs.ErrNotFound, hint, "table %s does not exist at %s%s", want, ref, where)
}

// neededColumns lists the columns of ts the query mentions; nil when the
// query may read them all.
func neededColumns(st *Statement, ts *TableScan, idents []catalog.TableIdent) []string {
	if st.Star {
		return nil
	}
	for i, r := range st.Tables {
		if idents[i] == ts.Ident && (st.WholeRows[strings.ToLower(r.Qualifier())] || st.WholeRows[strings.ToLower(r.Name)]) {
			return nil // t.* or t as a row value
		}
	}
	out := []string{}
	for _, c := range ts.Schema {
		if st.Columns[strings.ToLower(c.Name)] {
			out = append(out, c.Name)
		}
	}
	if len(out) == len(ts.Schema) {
		return nil
	}
	return out
}

// tableFilter is the pruning filter of table ts: the OR over its
// references of the AND of the filters that certainly apply to each; nil
// when some reference has none. The table format leaves out what it cannot
// evaluate faithfully.
func tableFilter(st *Statement, ts *TableScan, idents []catalog.TableIdent, tables map[catalog.TableIdent]*TableScan) [][]catalog.Predicate {
	var ors [][]catalog.Predicate
	for i, r := range st.Tables {
		if idents[i] != ts.Ident {
			continue
		}
		if r.Block < 0 {
			return nil
		}
		var ands []catalog.Predicate
		for _, f := range st.Blocks[r.Block].Filters {
			name, ok := filterColumn(st, i, f, idents, tables)
			if !ok {
				continue
			}
			p := f.Predicate
			p.Column = name
			ands = append(ands, p)
		}
		if len(ands) == 0 {
			return nil
		}
		ors = append(ors, ands)
	}
	return ors
}

// filterTexts renders the predicates that pruned for explain output: the
// AND of each group, groups (when several) parenthesized, sorted, without
// repeats and ORed.
func filterTexts(groups [][]catalog.Predicate) []string {
	if len(groups) == 0 {
		return nil
	}
	texts := make([]string, len(groups))
	for i, g := range groups {
		parts := make([]string, len(g))
		for j, p := range g {
			parts[j] = renderFilter(p, displayIdent(p.Column))
		}
		texts[i] = strings.Join(parts, " AND ")
	}
	if len(texts) == 1 {
		return texts
	}
	for i, t := range texts {
		texts[i] = "(" + t + ")"
	}
	sort.Strings(texts)
	texts = dedup(texts)
	return []string{strings.Join(texts, " OR ")}
}

func dedup(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// column finds a top-level column of ts by name, case-insensitively as
// DuckDB's identifiers match.
func column(ts *TableScan, name string) (catalog.Column, bool) {
	for _, c := range ts.Schema {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return catalog.Column{}, false
}

// filterColumn returns the name of the column of reference i that filter f
// is on, if f certainly applies to that reference.
func filterColumn(st *Statement, i int, f Filter, idents []catalog.TableIdent, tables map[catalog.TableIdent]*TableScan) (string, bool) {
	r := st.Tables[i]
	col, ok := column(tables[idents[i]], f.Column)
	if !ok {
		return "", false
	}
	switch len(f.Qualifier) {
	case 0:
		// Unqualified: only when the FROM clause holds base tables only
		// and no other table of it has the column.
		if !st.Blocks[r.Block].OnlyBaseTables {
			return "", false
		}
		for j, o := range st.Tables {
			if j == i || o.From != r.From {
				continue
			}
			if _, has := column(tables[idents[j]], f.Column); has {
				return "", false
			}
		}
		return col.Name, true
	case 1:
		q := strings.ToLower(f.Qualifier[0])
		if q != strings.ToLower(r.Qualifier()) {
			return "", false
		}
		// The qualifier must name this reference only within its FROM.
		for j, o := range st.Tables {
			if j != i && o.From == r.From && strings.ToLower(o.Qualifier()) == q {
				return "", false
			}
		}
		return col.Name, true
	case 2:
		if r.Alias == "" && strings.EqualFold(f.Qualifier[0], string(idents[i].Namespace)) && strings.EqualFold(f.Qualifier[1], r.Name) {
			return col.Name, true
		}
	}
	return "", false
}
