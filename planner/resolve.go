package planner

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
)

// parseSQL finds the inputs of SQL models with the SQL parser.
func (b *builder) parseSQL(ctx context.Context) error {
	for _, m := range b.models {
		if m.Language != LangSQL {
			continue
		}
		if b.opts.SQL == nil {
			b.ds.add(m.File, 0, "SQL models need DuckDB's SQL parser, which this build does not have")
			continue
		}
		if strings.TrimSpace(stripSQLComments(m.SQL)) == "" {
			b.ds.add(m.File, 0, "the file has no SQL; a SQL model is one SELECT statement")
			continue
		}
		st, err := plansql.Analyze(ctx, b.opts.SQL, m.SQL)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				return err
			}
			line, msg := sqlErrorLine(m.SQL, err.Error())
			b.ds.add(m.File, line, "SQL syntax error: %s", msg)
			continue
		}
		if m.Columns == nil && st.Output != nil {
			m.Columns, m.ColumnsDerived = st.Output, true
		}
		seen := map[string]bool{}
		for _, r := range st.Tables {
			name := r.Name
			if r.Schema != "" {
				name = r.Schema + "." + r.Name
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			m.Inputs = append(m.Inputs, &InputSpec{Name: name, Line: lineAt(m.SQL, r.Pos)})
		}
	}
	return nil
}

var (
	sqlLineRE   = regexp.MustCompile(`LINE (\d+):`)
	sqlAtLineRE = regexp.MustCompile(` at line (\d+), column \d+$`)
	sqlParenRE  = regexp.MustCompile(`\(line (\d+), column \d+\)`)
)

// sqlErrorLine finds the line of a parser error in its message (DuckDB
// says "LINE 3: ..."), defaulting to the first line of SQL after the header.
func sqlErrorLine(sql, msg string) (int, string) {
	line := firstSQLLine(sql)
	if m := sqlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	// Keep the message to its first line: DuckDB appends the source line
	// and a caret.
	msg, _, _ = strings.Cut(msg, "\n")
	if m := sqlParenRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	if m := sqlAtLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimSuffix(msg, m[0])
	}
	msg = strings.TrimPrefix(msg, "Parser Error: ")
	return line, strings.TrimSpace(msg)
}

func firstSQLLine(sql string) int {
	for i, l := range strings.Split(sql, "\n") {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "--") {
			return i + 1
		}
	}
	return 1
}

func stripSQLComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, "--"); i >= 0 {
			l = l[:i]
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// Input is a resolved input of a model.
type Input struct {
	// Param is the Python argument that receives it ("" for SQL).
	Param string `json:"param,omitempty"`
	// Source is "table" or "model".
	Source string `json:"source"`
	// Name is the input as written.
	Name string `json:"name"`
	// Table, Ref, Commit and SnapshotID describe a table scan.
	Table      string `json:"table,omitempty"`
	Ref        string `json:"ref,omitempty"`
	Commit     string `json:"commit,omitempty"`
	SnapshotID int64  `json:"snapshot_id,omitempty"`
	// Model is the upstream model of a model input.
	Model string `json:"model,omitempty"`
	// Columns to read (absent: all); Filter on rows (absent: none).
	Columns []string `json:"columns,omitempty"`
	Filter  string   `json:"filter,omitempty"`
	Line    int      `json:"line"`

	ident   catalog.TableIdent
	atRef   catalog.Ref
	display string // ref shown in messages
}

const (
	SourceTable = "table"
	SourceModel = "model"
)

// resolveInputs turns every input name into a model edge or a table scan.
func (b *builder) resolveInputs(ctx context.Context) error {
	b.resolved = map[*Model][]Input{}
	b.edges = map[*Model][]*Model{}
	for _, m := range b.models {
		ns := b.modelNamespace(m)
		for _, in := range m.Inputs {
			r := Input{Param: in.Param, Name: in.Name, Columns: in.Columns, Filter: in.Filter, Line: in.Line}
			if in.Ref != "" {
				ok, err := b.resolveAtRef(ctx, m, in, &r)
				if err != nil {
					return err
				}
				if ok {
					b.resolved[m] = append(b.resolved[m], r)
				}
				continue
			}
			if !strings.Contains(in.Name, ".") {
				if up, ok := b.byName[in.Name]; ok {
					if up == m {
						id := catalog.TableIdent{Namespace: ns, Name: m.Name}
						if _, exists := b.tables[id]; exists {
							b.shadow(m, in, id)
						} else {
							b.ds.add(m.File, in.Line, "model %s reads itself; a model reads tables and other models", m.Name)
						}
						continue
					}
					if up.Expectation {
						b.ds.add(m.File, in.Line, "%s is an expectation, whose result is a check, not a table; read the model it checks", up.Name)
						continue
					}
					r.Source, r.Model = SourceModel, up.Name
					b.resolved[m] = append(b.resolved[m], r)
					b.edges[m] = append(b.edges[m], up)
					continue
				}
			}
			id, err := catalog.ParseTableIdent(in.Name, b.namespace)
			if err != nil {
				b.ds.add(m.File, in.Line, "input %q: %s", in.Name, unhint(err))
				continue
			}
			// NS.NAME of a model that writes that table reads the model's
			// output, as the pipeline will have written it.
			if up, ok := b.byName[id.Name]; ok && up != m && up.Materialization != MatNone && !up.Expectation && b.modelNamespace(up) == id.Namespace {
				r.Source, r.Model = SourceModel, up.Name
				b.resolved[m] = append(b.resolved[m], r)
				b.edges[m] = append(b.edges[m], up)
				continue
			}
			if id.Name == m.Name && id.Namespace == ns {
				if _, exists := b.tables[id]; exists {
					b.shadow(m, in, id)
					continue
				}
			}
			t, ok := b.tables[id]
			if !ok {
				b.unknownInput(m, in, id)
				continue
			}
			r.Source, r.Table, r.SnapshotID, r.ident, r.atRef = SourceTable, id.String(), t.SnapshotID, id, b.at
			r.display = b.opts.Ref.String()
			b.resolved[m] = append(b.resolved[m], r)
		}
	}
	return nil
}

func (b *builder) shadow(m *Model, in *InputSpec, id catalog.TableIdent) {
	b.ds.add(m.File, in.Line, "model %s shadows the catalog table %s, which it also reads; rename the model (e.g. %s_clean)",
		m.Name, id, m.Name)
}

func (b *builder) unknownInput(m *Model, in *InputSpec, id catalog.TableIdent) {
	var cands []string
	qualified := strings.Contains(in.Name, ".")
	if !qualified {
		for name := range b.byName {
			cands = append(cands, name)
		}
		for tid := range b.tables {
			if tid.Namespace == b.namespace {
				cands = append(cands, tid.Name)
			}
		}
	}
	cands = append(cands, b.tableNames...)
	sort.Strings(cands)
	if qualified {
		hint := didYouMean(in.Name, cands)
		if up, ok := b.byName[id.Name]; ok && up != m {
			hint = fmt.Sprintf("; model %s is not written to a table (materialization %s): read it by name, %q", up.Name, up.Materialization, up.Name)
		}
		b.ds.add(m.File, in.Line, "unknown table %s at %s%s", id, b.opts.Ref, hint)
		return
	}
	b.ds.add(m.File, in.Line, "unknown table or model %q: no model has that name and there is no table %s at %s%s",
		in.Name, id, b.opts.Ref, didYouMean(in.Name, cands))
}

// resolveAtRef resolves Model(name, ref=...): always a catalog table, read
// at that ref.
func (b *builder) resolveAtRef(ctx context.Context, m *Model, in *InputSpec, r *Input) (bool, error) {
	ref, err := catalog.ParseRef(in.Ref)
	if err != nil {
		b.ds.add(m.File, in.Line, "ref %q: %s", in.Ref, unhint(err))
		return false, nil
	}
	if b.refs == nil {
		b.refs = map[string]*refState{}
	}
	st, ok := b.refs[in.Ref]
	if !ok {
		st = &refState{ref: ref}
		b.refs[in.Ref] = st
		c, err := b.opts.Catalog.Resolve(ctx, ref)
		if err != nil {
			if !errdefs.Is(err, errdefs.ErrNotFound) {
				return false, err
			}
			st.err = err
		} else {
			st.commit = c
			ts, err := b.opts.Catalog.ListTables(ctx, catalog.Ref{Commit: string(c.ID)}, "")
			if err != nil {
				return false, err
			}
			st.tables = tableMap(ts)
		}
	}
	if st.err != nil {
		b.ds.add(m.File, in.Line, "ref %q of input %s: %s", in.Ref, in.Name, unhint(st.err))
		return false, nil
	}
	id, err := catalog.ParseTableIdent(in.Name, b.namespace)
	if err != nil {
		b.ds.add(m.File, in.Line, "input %q: %s", in.Name, unhint(err))
		return false, nil
	}
	t, ok := st.tables[id]
	if !ok {
		var cands []string
		for tid := range st.tables {
			cands = append(cands, tid.String())
		}
		b.ds.add(m.File, in.Line, "unknown table %s at %s%s", id, in.Ref, didYouMean(id.String(), cands))
		return false, nil
	}
	at := catalog.Ref{Commit: string(st.commit.ID)}
	r.Source, r.Table, r.SnapshotID, r.ident, r.atRef = SourceTable, id.String(), t.SnapshotID, id, at
	r.Ref, r.Commit, r.display = in.Ref, string(st.commit.ID), in.Ref
	return true, nil
}

// unhint is an error's message without its hint.
func unhint(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "; "); i >= 0 {
		return msg[:i]
	}
	return msg
}

func (b *builder) modelNamespace(m *Model) catalog.Namespace {
	if m.Namespace != "" {
		if ns, err := catalog.ParseNamespace(m.Namespace); err == nil {
			return ns
		}
	}
	return b.namespace
}
