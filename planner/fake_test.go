package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// fakeCatalog is a fixed catalog: one commit on main, namespaces default
// and sales, a few tables with schemas.
type fakeCatalog struct {
	commit *catalog.Commit
	tables map[catalog.TableIdent]*catalog.TableInfo
	calls  int
}

func newFakeCatalog() *fakeCatalog {
	f := &fakeCatalog{
		commit: &catalog.Commit{ID: "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"},
		tables: map[catalog.TableIdent]*catalog.TableInfo{},
	}
	add := func(ns, name string, snap int64, cols ...string) {
		id := catalog.TableIdent{Namespace: catalog.Namespace(ns), Name: name}
		info := &catalog.TableInfo{Ident: id, Namespace: id.Namespace, Name: name, Snapshot: &catalog.SnapshotInfo{ID: snap}}
		for i, c := range cols {
			info.Schema = append(info.Schema, catalog.Column{ID: i + 1, Name: c, Type: "string"})
		}
		f.tables[id] = info
	}
	add("sales", "transactions", 1001, "id", "ts", "usd", "country", "customer")
	add("sales", "customers", 1002, "customer", "name", "country", "segment")
	add("default", "fx_rates", 1003, "currency", "day", "rate")
	add("raw", "events", 1004, "id", "kind", "payload")
	return f
}

func (f *fakeCatalog) Resolve(ctx context.Context, ref catalog.Ref) (*catalog.Commit, error) {
	f.calls++
	if ref.Name == "main" || ref.Name == "alice.dev" || ref.Commit != "" && strings.HasPrefix(string(f.commit.ID), ref.Commit) {
		return f.commit, nil
	}
	return nil, errdefs.WithHint(errdefs.ErrNotFound, "list them with `lakehouse branch ls`", "no branch or tag named %q", ref.Name)
}

func (f *fakeCatalog) ListNamespaces(ctx context.Context, ref catalog.Ref) ([]catalog.Namespace, error) {
	f.calls++
	return []catalog.Namespace{"default", "raw", "sales"}, nil
}

func (f *fakeCatalog) ListTables(ctx context.Context, ref catalog.Ref, ns catalog.Namespace) ([]catalog.TableSummary, error) {
	f.calls++
	var out []catalog.TableSummary
	for id, t := range f.tables {
		if ns == "" || id.Namespace == ns {
			out = append(out, catalog.TableSummary{Ident: id, Namespace: id.Namespace, Name: id.Name, SnapshotID: t.Snapshot.ID})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ident.Less(out[j].Ident) })
	return out, nil
}

func (f *fakeCatalog) GetTable(ctx context.Context, ref catalog.Ref, id catalog.TableIdent) (*catalog.TableInfo, error) {
	f.calls++
	t, ok := f.tables[id]
	if !ok {
		return nil, errdefs.New(errdefs.ErrNotFound, "table %s does not exist", id)
	}
	return t, nil
}

// fakeSQL finds FROM/JOIN table names with a regular expression and writes
// them as a parse tree of DuckDB's json_serialize_sql shape, which
// planner/sql reads as it reads DuckDB's. A query that does not start with
// SELECT or WITH is a syntax error, as is an unbalanced parenthesis. The
// output columns are those of a leading SELECT list of aliases and bare
// names; anything else leaves them unknown.
type fakeSQL struct{}

var (
	fakeFromRE = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)`)
	fakeCTERE  = regexp.MustCompile(`(?i)(?:\bWITH|,)\s*([A-Za-z_]\w*)\s+AS\s*\(`)
)

func (fakeSQL) SerializeSQL(ctx context.Context, sql string) ([]byte, error) {
	body := strings.TrimSpace(stripSQLComments(sql))
	word := strings.ToUpper(strings.Fields(body + " x")[0])
	if word != "SELECT" && word != "WITH" {
		pos := strings.Index(sql, strings.Fields(body)[0])
		return fakeSQLError(fmt.Sprintf("syntax error at or near %q at line %d, column 1\n  ...", strings.Fields(body)[0], lineAt(sql, pos)))
	}
	if strings.Count(body, "(") != strings.Count(body, ")") {
		return fakeSQLError("syntax error at end of input")
	}
	ctes := map[string]bool{}
	for _, m := range fakeCTERE.FindAllStringSubmatch(sql, -1) {
		ctes[strings.ToLower(m[1])] = true
	}
	tables := []any{}
	for _, m := range fakeFromRE.FindAllStringSubmatchIndex(sql, -1) {
		name := sql[m[2]:m[3]]
		if ctes[strings.ToLower(name)] {
			continue
		}
		ref := map[string]any{"type": "BASE_TABLE", "table_name": name, "schema_name": "", "catalog_name": "", "alias": "", "query_location": m[2]}
		if s, n, ok := strings.Cut(name, "."); ok {
			ref["schema_name"], ref["table_name"] = s, n
		}
		tables = append(tables, ref)
	}
	selectList := []any{map[string]any{"class": "FUNCTION", "alias": ""}}
	if cols, ok := fakeOutputColumns(sql); ok {
		selectList = selectList[:0]
		for _, c := range cols {
			selectList = append(selectList, map[string]any{"class": "COLUMN_REF", "alias": c, "column_names": []string{c}})
		}
	}
	node := map[string]any{"type": "SELECT_NODE", "select_list": selectList, "from_table": map[string]any{"type": "EMPTY"}, "tables": tables}
	return json.Marshal(map[string]any{"error": false, "statements": []any{map[string]any{"node": node}}})
}

// fakeSQLError is DuckDB's error object for a query that does not parse.
func fakeSQLError(msg string) ([]byte, error) {
	return json.Marshal(map[string]any{"error": true, "error_type": "PARSER", "error_message": msg})
}

var fakeSelectRE = regexp.MustCompile(`(?is)^\s*SELECT\s+(.*?)\s+FROM\b`)

// fakeOutputColumns names the columns of a leading SELECT list: aliases
// and bare names; anything else is unknown.
func fakeOutputColumns(sql string) ([]string, bool) {
	body := strings.TrimSpace(stripSQLComments(sql))
	m := fakeSelectRE.FindStringSubmatch(body)
	if m == nil {
		return nil, false
	}
	var cols []string
	for _, part := range splitList(m[1]) {
		f := strings.Fields(part)
		switch {
		case len(f) == 1 && identRE.MatchString(f[0]):
			cols = append(cols, f[0])
		case len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS"):
			cols = append(cols, f[len(f)-1])
		default:
			return nil, false
		}
	}
	return cols, true
}

// testInterpreters is a fixed machine for golden plans: 3.10 to 3.13, no 3.9.
var testInterpreters = []envcache.Python{
	{Version: "3.13.0", Minor: "3.13", Path: "/opt/python/3.13/bin/python3.13"},
	{Version: "3.12.1", Minor: "3.12", Path: "/opt/python/3.12/bin/python3.12"},
	{Version: "3.11.7", Minor: "3.11", Path: "/opt/python/3.11/bin/python3.11"},
	{Version: "3.10.13", Minor: "3.10", Path: "/opt/python/3.10/bin/python3.10"},
}

var _ = fmt.Sprint
