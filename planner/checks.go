package planner

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
)

// checkCycles reports each cycle of models once, as a → b → a, at the
// first model of the cycle in source order.
func (b *builder) checkCycles() {
	// Tarjan's strongly connected components.
	index := map[*Model]int{}
	low := map[*Model]int{}
	onStack := map[*Model]bool{}
	var stack []*Model
	next := 0
	var sccs [][]*Model
	var visit func(m *Model)
	visit = func(m *Model) {
		index[m], low[m] = next, next
		next++
		stack = append(stack, m)
		onStack[m] = true
		for _, up := range b.edges[m] {
			if _, seen := index[up]; !seen {
				visit(up)
				low[m] = min(low[m], low[up])
			} else if onStack[up] {
				low[m] = min(low[m], index[up])
			}
		}
		if low[m] == index[m] {
			var scc []*Model
			for {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[top] = false
				scc = append(scc, top)
				if top == m {
					break
				}
			}
			if len(scc) > 1 {
				sccs = append(sccs, scc)
			}
		}
	}
	for _, m := range b.models {
		if _, seen := index[m]; !seen {
			visit(m)
		}
	}
	for _, scc := range sccs {
		in := map[*Model]bool{}
		for _, m := range scc {
			in[m] = true
		}
		sort.Slice(scc, func(i, j int) bool { return sourceLess(scc[i], scc[j]) })
		start := scc[0]
		// Walk downstream (reader to input is upstream; print the data
		// flow: a feeds b feeds a) by following reverse edges in the SCC.
		path := []*Model{start}
		seen := map[*Model]bool{start: true}
		cur := start
		for {
			var nextM *Model
			for _, cand := range scc {
				if !readsFrom(b.edges[cand], cur) {
					continue
				}
				if cand == start && len(path) > 1 {
					nextM = start
					break
				}
				if !seen[cand] && (nextM == nil || sourceLess(cand, nextM)) {
					nextM = cand
				}
			}
			if nextM == nil || nextM == start {
				break
			}
			path = append(path, nextM)
			seen[nextM] = true
			cur = nextM
		}
		names := make([]string, 0, len(path)+1)
		for _, m := range path {
			names = append(names, m.Name)
		}
		names = append(names, start.Name)
		b.ds.add(start.File, start.Line, "cycle: %s (each model reads the one before it)", strings.Join(names, " → "))
	}
}

func readsFrom(ups []*Model, m *Model) bool {
	for _, u := range ups {
		if u == m {
			return true
		}
	}
	return false
}

func sourceLess(a, b *Model) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Name < b.Name
}

// checkColumns checks columns= of inputs against table schemas and the
// declared output columns of upstream models.
func (b *builder) checkColumns(ctx context.Context) error {
	if b.schemas == nil {
		b.schemas = map[string]*catalog.TableInfo{}
	}
	for _, m := range b.models {
		for _, in := range b.resolved[m] {
			if len(in.Columns) == 0 {
				continue
			}
			var have []string
			var what string
			switch in.Source {
			case SourceModel:
				up := b.byName[in.Model]
				if up.Columns == nil {
					continue // unknown until it runs
				}
				verb := "declares"
				if up.ColumnsDerived {
					verb = "returns"
				}
				have, what = up.Columns, fmt.Sprintf("an output of model %s, which %s", up.Name, verb)
			case SourceTable:
				key := in.atRef.Commit + "/" + in.Table
				info, ok := b.schemas[key]
				if !ok {
					var err error
					info, err = b.opts.Catalog.GetTable(ctx, in.atRef, in.ident)
					if err != nil {
						if errdefs.Is(err, errdefs.ErrNotFound) {
							b.ds.add(m.File, in.Line, "table %s: %s", in.Table, unhint(err))
							continue
						}
						return err
					}
					b.schemas[key] = info
				}
				for _, c := range info.Schema {
					have = append(have, c.Name)
				}
				what = fmt.Sprintf("in table %s at %s, which has", in.Table, in.display)
			}
			seen := map[string]bool{}
			for _, c := range in.Columns {
				if seen[c] {
					b.ds.add(m.File, in.Line, "column %q is listed twice in the columns of %s", c, in.Name)
					continue
				}
				seen[c] = true
				if !contains(have, c) {
					b.ds.add(m.File, in.Line, "unknown column %q: not %s %s%s", c, what, strings.Join(have, ", "), didYouMean(c, have))
				}
			}
		}
	}
	return nil
}

// checkModels checks each model's own settings: materialization, target
// namespace, Python version, pip requirements, parameters.
func (b *builder) checkModels() {
	cfg := &b.proj.Config
	d := cfg.Defaults
	defaultPyOK := true
	if d.Python != "" {
		if msg := b.checkPythonVersion(d.Python); msg != "" {
			b.ds.add(ConfigFile, d.PythonLine, "defaults.python: %s", msg)
			defaultPyOK = false
		}
	}
	defaultPipOK := true
	for _, k := range sortedKeys(d.Pip) {
		if _, err := pipRequirement(k, d.Pip[k]); err != nil {
			b.ds.add(ConfigFile, d.PipLine, "defaults.pip: %v", err)
			defaultPipOK = false
		}
	}
	_ = defaultPipOK
	declared := make([]string, 0, len(cfg.Params))
	for _, p := range cfg.Params {
		declared = append(declared, p.Name)
	}
	for _, m := range b.models {
		b.checkMaterialization(m)
		if m.Expectation && len(m.Inputs) == 0 {
			b.ds.add(m.File, m.Line, "expectation %s reads nothing; give it an input such as data=lakehouse.Model(\"...\")", m.Name)
		}
		if m.Language == LangPython {
			switch {
			case m.Python != "":
				if msg := b.checkPythonVersion(m.Python); msg != "" {
					b.ds.add(m.File, m.PythonLine, "%s: %s", m.Name, msg)
				}
			case d.Python == "":
				b.ds.add(m.File, m.Line, `%s has no Python version: add @lakehouse.python("3.11") or set defaults: python: in %s`, m.Name, ConfigFile)
			case !defaultPyOK:
				// reported once, in lakehouse.yml
			}
			for _, k := range sortedKeys(m.Pip) {
				if _, err := pipRequirement(k, m.Pip[k]); err != nil {
					b.ds.add(m.File, m.PipLine, "%s: pip: %v", m.Name, err)
				}
			}
			for _, p := range m.Params {
				if !contains(declared, p.Name) {
					b.ds.add(m.File, p.Line, "lakehouse.Parameter(%q): unknown parameter%s; declare it under parameters: in %s",
						p.Name, didYouMean(p.Name, declared), ConfigFile)
				}
			}
		}
	}
}

func (b *builder) checkMaterialization(m *Model) {
	line := m.MatLine
	if line == 0 {
		line = m.Line
	}
	switch {
	case m.Materialization == MatOverwritePartitions && len(m.PartitionedBy) == 0:
		b.ds.add(m.File, line, "%s: materialization OVERWRITE_PARTITIONS needs partitioned_by (the partition columns it overwrites)", m.Name)
	case m.Materialization == MatNone && len(m.PartitionedBy) > 0:
		b.ds.add(m.File, line, "%s: partitioned_by applies only to a written table; set materialization to REPLACE, APPEND or OVERWRITE_PARTITIONS", m.Name)
	}
	if m.Columns != nil && m.Materialization != MatNone {
		for _, p := range m.PartitionedBy {
			if col := partitionColumn(p); !contains(m.Columns, col) {
				b.ds.add(m.File, line, "%s: partitioned_by %s: column %q is not among its output columns (%s)%s",
					m.Name, p, col, strings.Join(m.Columns, ", "), didYouMean(col, m.Columns))
			}
		}
	}
	if m.OverwriteFilter != "" && m.Materialization != MatOverwritePartitions {
		b.ds.add(m.File, line, "%s: overwrite_filter applies only to materialization OVERWRITE_PARTITIONS", m.Name)
	}
	if m.Namespace != "" {
		if _, err := catalog.ParseNamespace(m.Namespace); err != nil {
			b.ds.add(m.File, m.NSLine, "%s: %s", m.Name, unhint(err))
			return
		}
	}
	if m.Materialization != MatNone && !m.Expectation {
		ns := b.modelNamespace(m)
		if !b.nsExists[ns] && !b.nsReported[ns] {
			// Once per namespace: every other model writing there has the
			// same fix.
			if b.nsReported == nil {
				b.nsReported = map[catalog.Namespace]bool{}
			}
			b.nsReported[ns] = true
			line := m.NSLine
			if line == 0 {
				line = m.Line
			}
			b.ds.add(m.File, line, "%s writes %s.%s but namespace %s does not exist at %s; create it with `lakehouse namespace create %s`",
				m.Name, ns, m.Name, ns, b.opts.Ref, ns)
		}
	}
}

// checkPythonVersion returns "" for a supported version ("3.11", "3.11.7"),
// else what is wrong.
func (b *builder) checkPythonVersion(v string) string {
	minor := envcache.PythonMinor(v)
	n := minorNumber(minor)
	if minor == "" || n < MinPythonMinor || n > MaxPythonMinor {
		return fmt.Sprintf("Python %q is not supported; use 3.9 to 3.13 (this machine has %s)", v, b.machinePythons())
	}
	return ""
}

func (b *builder) machinePythons() string {
	var vs []string
	for _, in := range b.opts.Interpreters {
		if !slices.Contains(vs, in.Minor) {
			vs = append(vs, in.Minor)
		}
	}
	sort.Slice(vs, func(i, j int) bool { return minorNumber(vs[i]) < minorNumber(vs[j]) })
	if len(vs) == 0 {
		return "none"
	}
	return strings.Join(vs, ", ")
}

// filterTable is the placeholder table a filter is parsed against.
const filterTable = "__lakehouse_filter"

// checkFilters parses each input filter and overwrite_filter as the WHERE
// clause of a query, so a typo fails the plan rather than the run.
func (b *builder) checkFilters(ctx context.Context) error {
	if b.opts.SQL == nil {
		return nil
	}
	check := func(m *Model, line int, what, filter string) error {
		if strings.TrimSpace(filter) == "" {
			return nil
		}
		st, err := plansql.Analyze(ctx, b.opts.SQL, "SELECT * FROM "+filterTable+" WHERE "+filter)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				return err
			}
			_, msg := sqlErrorLine("", err.Error())
			msg = sqlParenRE.ReplaceAllString(msg, "")
			b.ds.add(m.File, line, "%s %q is not a valid SQL condition: %s", what, filter, strings.TrimSpace(msg))
			return nil
		}
		for _, r := range st.Tables {
			if r.Name != filterTable || r.Schema != "" {
				name := r.Name
				if r.Schema != "" {
					name = r.Schema + "." + name
				}
				b.ds.add(m.File, line, "%s %q reads table %s; a filter may use only the columns of its input", what, filter, name)
				break
			}
		}
		return nil
	}
	for _, m := range b.models {
		for _, in := range m.Inputs {
			if err := check(m, in.Line, "filter of input "+in.Name, in.Filter); err != nil {
				return err
			}
		}
		line := m.MatLine
		if line == 0 {
			line = m.Line
		}
		if err := check(m, line, m.Name+": overwrite_filter", m.OverwriteFilter); err != nil {
			return err
		}
	}
	return nil
}

// partitionColumn is the source column of a partition field: "country",
// or ts in "day(ts)", id in "bucket(16, id)".
func partitionColumn(field string) string {
	f := strings.TrimSpace(field)
	open, close := strings.IndexByte(f, '('), strings.LastIndexByte(f, ')')
	if open < 0 || close < open {
		return f
	}
	args := strings.Split(f[open+1:close], ",")
	return strings.TrimSpace(args[len(args)-1])
}

// unusedParams warns about declared parameters no model uses.
func (b *builder) unusedParams() []Diagnostic {
	used := map[string]bool{}
	for _, m := range b.models {
		for _, u := range m.Params {
			used[u.Name] = true
		}
	}
	var ws diags
	for _, p := range b.proj.Config.Params {
		if !used[p.Name] {
			ws.add(ConfigFile, p.Line, "parameter %s is declared but no model uses it", p.Name)
		}
	}
	return ws
}
