package sql

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Statement is what the planner needs from one parsed SELECT statement:
// the tables it reads, the columns it mentions and the simple predicates of
// its WHERE clauses. It is built from DuckDB's own parse tree (the JSON of
// json_serialize_sql), never from the SQL text.
type Statement struct {
	// Tables are the table references in order of position: every
	// BASE_TABLE of the tree (FROM, joins, subqueries, CTE bodies, set
	// operations) except names of CTEs in scope.
	Tables []TableRef
	// Columns are the lower-cased parts of every column reference
	// ("t.a" gives "t" and "a"): a superset of the columns read.
	Columns map[string]bool
	// Star is set when an unqualified * (or COLUMNS(…)) appears: every
	// table may be read whole.
	Star bool
	// WholeRows are the lower-cased names used as t.* or as a bare value
	// (SELECT t FROM t): a reference with that alias or name is read whole.
	WholeRows map[string]bool
	// Blocks are the SELECT blocks with a WHERE clause, for pruning.
	Blocks []Block
	// Output names the columns the statement returns: aliases, and the
	// last part of plain column references; the left side of a set
	// operation names them. Nil when they depend on the inputs' schemas
	// (*) or on an expression without an alias, or a name repeats.
	Output []string
}

// TableRef is one reference to a table in the parse tree.
type TableRef struct {
	Catalog, Schema, Name string
	// Alias is the alias given in the query, "" for none.
	Alias string
	// Pos is the byte offset of the reference in the SQL, -1 if unknown.
	Pos int
	// Block is the index in Statement.Blocks of the block whose WHERE
	// clause filters this reference's rows directly, -1 for none.
	Block int
	// From is the index of the block whose FROM clause holds the
	// reference (whether or not its WHERE filters it), -1 for none.
	From int
}

// Qualifier is the name the query uses for the reference's columns.
func (r TableRef) Qualifier() string {
	if r.Alias != "" {
		return r.Alias
	}
	return r.Name
}

// Block is one SELECT … FROM … WHERE … block.
type Block struct {
	// OnlyBaseTables is set when the FROM clause holds base tables only,
	// so an unqualified column belongs to one of them.
	OnlyBaseTables bool
	// Filters are the simple conjuncts of the WHERE clause.
	Filters []Filter
}

// Filter is one simple predicate of a WHERE clause: column op constant(s),
// the column as the query spells it.
type Filter struct {
	// Qualifier is the parts before the column name ("t" in t.a; empty
	// when unqualified).
	Qualifier []string
	catalog.Predicate
}

// parseError is DuckDB's error object in json_serialize_sql output.
type parseError struct {
	Error    bool   `json:"error"`
	Type     string `json:"error_type"`
	Message  string `json:"error_message"`
	Subtype  string `json:"error_subtype"`
	Position string `json:"position"`
}

// SyntaxError is a query that does not parse, or a statement that is not a
// query. It is of class errdefs.ErrInvalidArgument.
type SyntaxError struct {
	// Msg is DuckDB's message.
	Msg string
	// Pos is the byte offset DuckDB points at, -1 if none.
	Pos int
	// SQL is the query text, for rendering the position.
	SQL string
}

func (e *SyntaxError) Error() string {
	if e.Pos < 0 || e.Pos > len(e.SQL) {
		return e.Msg
	}
	line, col, text := lineCol(e.SQL, e.Pos)
	return fmt.Sprintf("%s (line %d, column %d)\n  %s\n  %s^", e.Msg, line, col, text, strings.Repeat(" ", utf8.RuneCountInString(text[:col-1])))
}

// Unwrap makes errors.Is(err, errdefs.ErrInvalidArgument) hold.
func (e *SyntaxError) Unwrap() error { return errdefs.ErrInvalidArgument }

// lineCol turns a byte offset into a 1-based line and column and the text
// of that line (shortened around the column when long).
func lineCol(sql string, pos int) (line, col int, text string) {
	start := strings.LastIndexByte(sql[:pos], '\n') + 1
	end := strings.IndexByte(sql[pos:], '\n')
	if end < 0 {
		end = len(sql)
	} else {
		end += pos
	}
	line = strings.Count(sql[:pos], "\n") + 1
	text = sql[start:end]
	col = pos - start + 1
	const window = 60
	if len(text) > 2*window {
		lo := max(0, col-1-window)
		hi := min(len(text), col-1+window)
		text, col = text[lo:hi], col-lo
	}
	text = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\r' {
			return ' '
		}
		return r
	}, text)
	return line, col, text
}

// OnlySelectMessage is the error for statements other than queries.
const OnlySelectMessage = "only SELECT queries are allowed (and WITH, VALUES, set operations of them); queries can read catalog tables only"

// ParseStatement reads the JSON of DuckDB's json_serialize_sql for sql and
// returns the statement, or a *SyntaxError (ErrInvalidArgument) for a
// syntax error, a non-SELECT statement, or more than one statement.
func ParseStatement(sql string, astJSON []byte) (*Statement, error) {
	var head parseError
	if err := json.Unmarshal(astJSON, &head); err != nil {
		// A literal beyond a double's range (SELECT 1e999) is written as
		// Infinity, which is not JSON.
		fixed, ok := quoteNonFinite(astJSON)
		if !ok || json.Unmarshal(fixed, &head) != nil {
			return nil, fmt.Errorf("reading DuckDB's parse tree: %w", err)
		}
		astJSON = fixed
	}
	if head.Error {
		pos := -1
		if p, err := strconv.Atoi(head.Position); err == nil {
			pos = p
		}
		msg := head.Message
		if strings.Contains(msg, "Only SELECT statements") {
			return nil, &SyntaxError{Msg: OnlySelectMessage, Pos: -1, SQL: sql}
		}
		if strings.Contains(msg, `near "default"`) {
			msg += `; DEFAULT is a reserved word: quote the namespace, "default".table, or leave it out (-n default)`
		}
		return nil, &SyntaxError{Msg: msg, Pos: pos, SQL: sql}
	}
	dec := json.NewDecoder(bytes.NewReader(astJSON))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("reading DuckDB's parse tree: %w", err)
	}
	stmts, _ := root["statements"].([]any)
	switch {
	case len(stmts) == 0:
		return nil, &SyntaxError{Msg: "the query is empty", Pos: -1, SQL: sql}
	case len(stmts) > 1:
		return nil, &SyntaxError{Msg: "one statement per query, please: found " + strconv.Itoa(len(stmts)), Pos: -1, SQL: sql}
	}
	w := &walker{st: &Statement{Columns: map[string]bool{}, WholeRows: map[string]bool{}}}
	if err := w.walk(stmts[0], nil); err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			se.SQL = sql
		}
		return nil, err
	}
	sort.SliceStable(w.st.Tables, func(i, j int) bool { return w.st.Tables[i].Pos < w.st.Tables[j].Pos })
	w.st.Output = outputColumns(stmts[0])
	return w.st, nil
}

// outputColumns reads the output column names of a statement (see
// Statement.Output).
func outputColumns(stmt any) []string {
	sm, _ := stmt.(map[string]any)
	n, _ := sm["node"].(map[string]any)
	for depth := 0; depth < 64 && n != nil; depth++ {
		switch n["type"] {
		case "SET_OPERATION_NODE":
			n, _ = n["left"].(map[string]any)
			continue
		case "SELECT_NODE":
		default:
			return nil
		}
		var cols []string
		seen := map[string]bool{}
		for _, e := range maps(n["select_list"]) {
			name, _ := e["alias"].(string)
			if parts := strs(e["column_names"]); name == "" && e["class"] == "COLUMN_REF" && len(parts) > 0 {
				name = parts[len(parts)-1]
			}
			if name == "" || seen[name] {
				return nil
			}
			seen[name] = true
			cols = append(cols, name)
		}
		return cols
	}
	return nil
}

type walker struct {
	st *Statement
}

// scope is the set of CTE names visible (lower case).
type scope map[string]bool

func (s scope) with(names ...string) scope {
	out := make(scope, len(s)+len(names))
	for k := range s {
		out[k] = true
	}
	for _, n := range names {
		out[strings.ToLower(n)] = true
	}
	return out
}

// walk visits every node of the tree.
func (w *walker) walk(v any, sc scope) error {
	switch n := v.(type) {
	case []any:
		for _, c := range n {
			if err := w.walk(c, sc); err != nil {
				return err
			}
		}
	case map[string]any:
		return w.walkMap(n, sc)
	}
	return nil
}

func (w *walker) walkMap(n map[string]any, sc scope) error {
	if cm, ok := n["cte_map"].(map[string]any); ok {
		entries, _ := cm["map"].([]any)
		for _, e := range entries {
			em, _ := e.(map[string]any)
			key, _ := em["key"].(string)
			// A CTE sees itself (recursive CTEs) and the CTEs before it.
			sc = sc.with(key)
			if err := w.walk(em["value"], sc); err != nil {
				return err
			}
		}
	}
	typ, _ := n["type"].(string)
	class, _ := n["class"].(string)
	switch {
	case typ == "BASE_TABLE":
		return w.baseTable(n, sc)
	case class == "COLUMN_REF":
		parts := strs(n["column_names"])
		for _, p := range parts {
			w.st.Columns[strings.ToLower(p)] = true
		}
		if len(parts) == 1 {
			w.st.WholeRows[strings.ToLower(parts[0])] = true
		}
	case class == "STAR":
		if rel, _ := n["relation_name"].(string); rel != "" {
			w.markWholeRow(rel)
		} else {
			w.st.Star = true
		}
	case typ == "SELECT_NODE":
		w.selectNode(n)
	}
	for k, c := range n {
		if k == "cte_map" {
			continue
		}
		if err := w.walk(c, sc); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) baseTable(n map[string]any, sc scope) error {
	cat, _ := n["catalog_name"].(string)
	schema, _ := n["schema_name"].(string)
	name, _ := n["table_name"].(string)
	alias, _ := n["alias"].(string)
	pos := location(n["query_location"])
	if at := n["at_clause"]; at != nil {
		return &SyntaxError{Msg: "AT (VERSION/TIMESTAMP) clauses are not supported; choose the catalog state with the ref (-r main@<commit> or main@<time>)", Pos: pos}
	}
	if cat == "" && schema == "" && sc[strings.ToLower(name)] {
		return nil // a CTE
	}
	block, from := -1, -1
	if b, ok := n[blockKey].(int); ok {
		block = b
	}
	if b, ok := n[fromKey].(int); ok {
		from = b
	}
	w.st.Tables = append(w.st.Tables, TableRef{Catalog: cat, Schema: schema, Name: name, Alias: alias, Pos: pos, Block: block, From: from})
	return nil
}

// markWholeRow notes that the reference named q (alias or table name) is
// read whole (t.*).
func (w *walker) markWholeRow(q string) {
	w.st.WholeRows[strings.ToLower(q)] = true
}

// selectNode records the simple WHERE conjuncts of a SELECT block and
// marks the base tables of its FROM clause that the WHERE clause filters
// directly. It runs before the block's children are walked, so baseTable
// finds the marks.
func (w *walker) selectNode(n map[string]any) {
	where, _ := n["where_clause"].(map[string]any)
	if where == nil || n["sample"] != nil {
		// USING SAMPLE samples before WHERE: fewer files, another sample.
		return
	}
	var items []fromItem
	onlyBase := collectFrom(n["from_table"], true, &items)
	block := len(w.st.Blocks)
	for _, it := range items {
		it.node[fromKey] = block
		if it.filterable {
			it.node[blockKey] = block
		}
	}
	b := Block{OnlyBaseTables: onlyBase}
	for _, c := range conjuncts(where) {
		if f, ok := simpleFilter(c); ok {
			b.Filters = append(b.Filters, f)
		}
	}
	w.st.Blocks = append(w.st.Blocks, b)
}

// blockKey marks a BASE_TABLE node with the block that filters it, fromKey
// with the block whose FROM clause holds it.
const (
	blockKey = "\x00block"
	fromKey  = "\x00from"
)

type fromItem struct {
	node       map[string]any
	filterable bool
}

// collectFrom lists the base tables of a FROM clause and whether a WHERE
// predicate on them filters their rows (inner and cross joins, the
// preserved side of outer, semi and anti joins). It reports whether the
// clause holds base tables only.
func collectFrom(v any, filterable bool, out *[]fromItem) bool {
	n, ok := v.(map[string]any)
	if !ok {
		return v == nil
	}
	switch n["type"] {
	case "BASE_TABLE":
		// TABLESAMPLE samples the scan, before WHERE.
		*out = append(*out, fromItem{node: n, filterable: filterable && n["sample"] == nil})
		return true
	case "EMPTY":
		return true
	case "JOIN":
		left, right := filterable, filterable
		jt, _ := n["join_type"].(string)
		rt, _ := n["ref_type"].(string)
		switch rt {
		case "REGULAR", "CROSS", "NATURAL":
		default: // ASOF, POSITIONAL, DEPENDENT (lateral): row matching depends on all rows
			left, right = false, false
		}
		switch jt {
		case "INNER":
		case "LEFT", "SEMI", "ANTI":
			right = false
		case "RIGHT":
			left = false
		default:
			left, right = false, false
		}
		a := collectFrom(n["left"], left, out)
		b := collectFrom(n["right"], right, out)
		return a && b
	}
	return false
}

// conjuncts splits an AND tree.
func conjuncts(n map[string]any) []map[string]any {
	if n["type"] == "CONJUNCTION_AND" {
		var out []map[string]any
		for _, c := range maps(n["children"]) {
			out = append(out, conjuncts(c)...)
		}
		return out
	}
	return []map[string]any{n}
}

var compareOps = map[string]string{
	"COMPARE_EQUAL": "=", "COMPARE_NOTEQUAL": "<>",
	"COMPARE_LESSTHAN": "<", "COMPARE_LESSTHANOREQUALTO": "<=",
	"COMPARE_GREATERTHAN": ">", "COMPARE_GREATERTHANOREQUALTO": ">=",
}

var flipped = map[string]string{"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

// simpleFilter recognizes col op const, const op col, col BETWEEN c AND c,
// col IN (c, …), col IS [NOT] NULL.
func simpleFilter(n map[string]any) (Filter, bool) {
	typ, _ := n["type"].(string)
	switch {
	case compareOps[typ] != "":
		op := compareOps[typ]
		l, _ := n["left"].(map[string]any)
		r, _ := n["right"].(map[string]any)
		if q, col, ok := columnRef(l); ok {
			if c, ok := constant(r); ok {
				return Filter{Qualifier: q, Predicate: catalog.Predicate{Column: col, Op: op, Values: []catalog.Literal{c}}}, true
			}
		}
		if q, col, ok := columnRef(r); ok {
			if c, ok := constant(l); ok {
				return Filter{Qualifier: q, Predicate: catalog.Predicate{Column: col, Op: flipped[op], Values: []catalog.Literal{c}}}, true
			}
		}
	case typ == "COMPARE_BETWEEN":
		in, _ := n["input"].(map[string]any)
		lo, _ := n["lower"].(map[string]any)
		hi, _ := n["upper"].(map[string]any)
		q, col, ok := columnRef(in)
		if !ok {
			break
		}
		cl, ok1 := constant(lo)
		ch, ok2 := constant(hi)
		if ok1 && ok2 {
			return Filter{Qualifier: q, Predicate: catalog.Predicate{Column: col, Op: "between", Values: []catalog.Literal{cl, ch}}}, true
		}
	case typ == "COMPARE_IN":
		ch := maps(n["children"])
		if len(ch) < 2 {
			break
		}
		q, col, ok := columnRef(ch[0])
		if !ok {
			break
		}
		f := Filter{Qualifier: q, Predicate: catalog.Predicate{Column: col, Op: "in"}}
		for _, c := range ch[1:] {
			k, ok := constant(c)
			if !ok {
				return Filter{}, false
			}
			f.Values = append(f.Values, k)
		}
		return f, true
	case typ == "OPERATOR_IS_NULL" || typ == "OPERATOR_IS_NOT_NULL":
		ch := maps(n["children"])
		if len(ch) != 1 {
			break
		}
		if q, col, ok := columnRef(ch[0]); ok {
			op := "isnull"
			if typ == "OPERATOR_IS_NOT_NULL" {
				op = "notnull"
			}
			return Filter{Qualifier: q, Predicate: catalog.Predicate{Column: col, Op: op}}, true
		}
	}
	return Filter{}, false
}

func columnRef(n map[string]any) (qual []string, col string, ok bool) {
	if n == nil || n["class"] != "COLUMN_REF" {
		return nil, "", false
	}
	parts := strs(n["column_names"])
	if len(parts) == 0 {
		return nil, "", false
	}
	return parts[:len(parts)-1], parts[len(parts)-1], true
}

// constant recognizes a non-null literal, or a cast of a string literal to
// DATE, TIMESTAMP, TIME or BOOLEAN.
func constant(n map[string]any) (catalog.Literal, bool) {
	if n == nil {
		return catalog.Literal{}, false
	}
	switch n["class"] {
	case "CONSTANT":
		val, _ := n["value"].(map[string]any)
		if val == nil || val["is_null"] == true {
			return catalog.Literal{}, false
		}
		t, _ := val["type"].(map[string]any)
		id, _ := t["id"].(string)
		c := catalog.Literal{Type: id}
		switch x := val["value"].(type) {
		case json.Number:
			c.Text = x.String()
		case string:
			if id == "DOUBLE" || id == "FLOAT" {
				// Infinity or NaN (quoteNonFinite): DuckDB orders NaN
				// above every number, file statistics leave it out, so
				// such a bound prunes nothing.
				return catalog.Literal{}, false
			}
			c.Text = x
		case bool:
			c.Text = strconv.FormatBool(x)
		default:
			return catalog.Literal{}, false
		}
		if id == "DECIMAL" {
			ti, _ := t["type_info"].(map[string]any)
			sc, ok := ti["scale"].(json.Number)
			if !ok {
				return catalog.Literal{}, false
			}
			s, err := sc.Int64()
			if err != nil {
				return catalog.Literal{}, false
			}
			c.Scale = int(s)
		}
		return c, true
	case "CAST":
		if n["try_cast"] == true {
			return catalog.Literal{}, false
		}
		ct, _ := n["cast_type"].(map[string]any)
		id, _ := ct["id"].(string)
		child, _ := n["child"].(map[string]any)
		c, ok := constant(child)
		if !ok || c.Type != "VARCHAR" {
			return catalog.Literal{}, false
		}
		switch id {
		case "DATE", "TIMESTAMP", "TIME", "BOOLEAN":
			c.Type = id
			return c, true
		case "TIMESTAMP WITH TIME ZONE":
			c.Type = "TIMESTAMPTZ"
			return c, true
		}
	}
	return catalog.Literal{}, false
}

func maps(v any) []map[string]any {
	arr, _ := v.([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, x := range arr {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func strs(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// location reads a query_location; DuckDB writes 2^64-1 for none.
func location(v any) int {
	num, ok := v.(json.Number)
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return -1
	}
	return int(n)
}

// quoteNonFinite returns b with the bare Infinity, -Infinity and NaN that
// DuckDB writes for non-finite doubles quoted as JSON strings, and whether
// there were any.
func quoteNonFinite(b []byte) ([]byte, bool) {
	var out []byte
	last, inString, found := 0, false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			continue
		}
		for _, tok := range []string{"-Infinity", "Infinity", "NaN"} {
			if bytes.HasPrefix(b[i:], []byte(tok)) {
				out = append(out, b[last:i]...)
				out = append(out, '"')
				out = append(out, tok...)
				out = append(out, '"')
				i += len(tok) - 1
				last, found = i+1, true
				break
			}
		}
	}
	if !found {
		return b, false
	}
	return append(out, b[last:]...), true
}
