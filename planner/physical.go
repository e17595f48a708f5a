package planner

import (
	"sort"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
)

// Plan is a validated pipeline: the physical plan of every function in
// topological order. Its JSON form is stable (lakehouse run --dry-run -O json).
type Plan struct {
	Project    string       `json:"project"`
	Ref        string       `json:"ref"`
	Commit     string       `json:"commit"`
	Namespace  string       `json:"namespace"`
	Parameters []ParamValue `json:"parameters"`
	// TimeoutSecs is the timeout of a model that sets none of its own:
	// defaults.timeout of lakehouse.yml, else DefaultTimeout. Every node's
	// Resources.TimeoutSecs is its effective timeout.
	TimeoutSecs int64 `json:"timeout_seconds"`
	// Interpreters are the Pythons found on this machine, newest first.
	Interpreters []envcache.Python `json:"interpreters"`
	// Tables are the catalog tables the pipeline reads.
	Tables []TableScan `json:"tables"`
	// Models are the functions, upstream before downstream.
	Models []*Node `json:"models"`
	// Chains are the Python models that run fused, chain by chain, each
	// in order: the first model of a chain runs it in one interpreter,
	// each table handed to the next in memory (see fuse.go). A model is
	// in one chain at most; models in none run on their own.
	Chains [][]string `json:"chains"`
	// NoFuse says fusion was turned off (Options.NoFuse): Chains is empty.
	NoFuse   bool         `json:"no_fuse,omitempty"`
	Warnings []Diagnostic `json:"warnings"`
	// Timings are not part of the JSON form (they vary between runs).
	Timings Timings `json:"-"`
}

// TableScan is a catalog table read by the pipeline.
type TableScan struct {
	Table      string   `json:"table"`
	Ref        string   `json:"ref"`
	SnapshotID int64    `json:"snapshot_id"`
	ReadBy     []string `json:"read_by"`
}

// Node is one function of the plan.
type Node struct {
	Name string `json:"name"`
	// Kind is "model" or "expectation".
	Kind     string `json:"kind"`
	Language string `json:"language"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Function string `json:"function,omitempty"`
	// Python is the environment of a Python function; SQL runs in DuckDB.
	Python     *PythonEnv   `json:"python,omitempty"`
	SQL        string       `json:"sql,omitempty"`
	Inputs     []Input      `json:"inputs"`
	Parameters []BoundParam `json:"parameters"`
	// Upstream and Downstream are the models this reads and that read it.
	Upstream   []string `json:"upstream"`
	Downstream []string `json:"downstream"`
	Output     Output   `json:"output"`
	// Columns are the output columns when known (absent: known only when
	// it runs); ColumnsFrom says how: "declared" or "sql" (the select list).
	Columns        []string  `json:"columns,omitempty"`
	ColumnsFrom    string    `json:"columns_from,omitempty"`
	Resources      Resources `json:"resources"`
	Cache          bool      `json:"cache"`
	InternetAccess bool      `json:"internet_access"`
}

// PythonEnv is a Python function's environment.
type PythonEnv struct {
	// Version is the requested version ("3.11").
	Version string `json:"version"`
	// Interpreter is the binary found on this machine, or "missing".
	Interpreter string `json:"interpreter"`
	// Requirements are pip requirements, project defaults merged under the
	// model's own, sorted by name; pyarrow is always among them.
	Requirements []string `json:"requirements"`
	// Added lists requirements the planner added (pyarrow).
	Added []string `json:"added,omitempty"`
}

// BoundParam is a parameter passed to a function.
type BoundParam struct {
	// Param is the Python argument ("" for SQL $name).
	Param string    `json:"param,omitempty"`
	Name  string    `json:"name"`
	Type  ParamType `json:"type"`
	Value any       `json:"value"`
}

// Output is where a model's output goes.
type Output struct {
	Materialization string `json:"materialization"`
	// Table is the Iceberg table written (absent for NONE: in memory only).
	Table           string   `json:"table,omitempty"`
	PartitionedBy   []string `json:"partitioned_by,omitempty"`
	OverwriteFilter string   `json:"overwrite_filter,omitempty"`
}

// physical builds the plan of a validated project.
func (b *builder) physical() *Plan {
	p := &Plan{
		Project:      b.proj.Config.Name,
		Ref:          b.opts.Ref.String(),
		Commit:       string(b.commit.ID),
		Namespace:    string(b.namespace),
		Parameters:   nonNil(b.paramList),
		TimeoutSecs:  b.defaultTimeout(),
		Interpreters: nonNil(b.opts.Interpreters),
		Warnings:     nonNil([]Diagnostic(b.warnings)),
	}
	order := b.topoOrder()
	nodes := map[*Model]*Node{}
	scans := map[string]*TableScan{}
	for _, m := range order {
		n := b.node(m)
		nodes[m] = n
		p.Models = append(p.Models, n)
		for _, in := range n.Inputs {
			if in.Source != SourceTable {
				continue
			}
			ref := in.Ref
			if ref == "" {
				ref = p.Ref
			}
			key := ref + " " + in.Table
			s, ok := scans[key]
			if !ok {
				s = &TableScan{Table: in.Table, Ref: ref, SnapshotID: in.SnapshotID}
				scans[key] = s
			}
			if !contains(s.ReadBy, m.Name) {
				s.ReadBy = append(s.ReadBy, m.Name)
			}
		}
	}
	for _, m := range order {
		for _, up := range b.edges[m] {
			if !contains(nodes[up].Downstream, m.Name) {
				nodes[up].Downstream = append(nodes[up].Downstream, m.Name)
			}
		}
	}
	for _, k := range sortedKeys(scans) {
		p.Tables = append(p.Tables, *scans[k])
	}
	sort.SliceStable(p.Tables, func(i, j int) bool {
		a, b := p.Tables[i], p.Tables[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if (a.Ref == p.Ref) != (b.Ref == p.Ref) {
			return a.Ref == p.Ref // the target ref first
		}
		return a.Ref < b.Ref
	})
	p.Tables = nonNil(p.Tables)
	p.Models = nonNil(p.Models)
	p.Chains, p.NoFuse = [][]string{}, b.opts.NoFuse
	if !b.opts.NoFuse {
		p.Chains = fuse(p.Models)
	}
	b.addWarnings(p)
	return p
}

func (b *builder) node(m *Model) *Node {
	n := &Node{
		Name: m.Name, Kind: "model", Language: m.Language, File: m.File, Line: m.Line, Function: m.Function,
		Inputs: nonNil(b.resolved[m]), Parameters: []BoundParam{}, Upstream: []string{}, Downstream: []string{},
		Columns: m.Columns, Resources: m.Resources, Cache: m.Cache, InternetAccess: m.InternetAccess,
		Output: Output{Materialization: m.Materialization, PartitionedBy: m.PartitionedBy, OverwriteFilter: m.OverwriteFilter},
	}
	if n.Resources.TimeoutSecs == 0 {
		n.Resources.TimeoutSecs = b.defaultTimeout()
	}
	if m.Expectation {
		n.Kind = "expectation"
	}
	if m.Columns != nil {
		n.ColumnsFrom = "declared"
		if m.ColumnsDerived {
			n.ColumnsFrom = "sql"
		}
	}
	if m.Materialization != MatNone {
		n.Output.Table = catalog.TableIdent{Namespace: b.modelNamespace(m), Name: m.Name}.String()
	}
	for _, up := range b.edges[m] {
		if !contains(n.Upstream, up.Name) {
			n.Upstream = append(n.Upstream, up.Name)
		}
	}
	seen := map[string]bool{}
	for _, u := range m.Params {
		if m.Language == LangSQL {
			if seen[u.Name] {
				continue
			}
			seen[u.Name] = true
		}
		pv := b.params[u.Name]
		n.Parameters = append(n.Parameters, BoundParam{Param: u.Param, Name: u.Name, Type: pv.Type, Value: pv.Value})
	}
	if m.Language == LangSQL {
		n.SQL = strings.TrimSpace(m.SQL)
		// The query starts at the file's first non-blank line, so that
		// DuckDB's "LINE n" is line Line+n-1 of the file.
		n.Line += strings.Count(m.SQL[:strings.Index(m.SQL, n.SQL)], "\n")
		return n
	}
	version := m.Python
	if version == "" {
		version = b.proj.Config.Defaults.Python
	}
	env := &PythonEnv{Version: version, Interpreter: "missing"}
	if in, ok := envcache.PythonFor(b.opts.Interpreters, version); ok {
		env.Interpreter = in.Path
	}
	reqs := map[string]string{}
	for _, pip := range []map[string]string{b.proj.Config.Defaults.Pip, m.Pip} {
		for _, k := range sortedKeys(pip) {
			r, _ := pipRequirement(k, pip[k])
			reqs[normalizePipName(k)] = r
		}
	}
	if _, ok := reqs["pyarrow"]; !ok {
		reqs["pyarrow"] = "pyarrow"
		env.Added = []string{"pyarrow"}
	}
	for _, k := range sortedKeys(reqs) {
		env.Requirements = append(env.Requirements, reqs[k])
	}
	n.Python = env
	return n
}

// defaultTimeout is the timeout of models that set none.
func (b *builder) defaultTimeout() int64 {
	if t := b.proj.Config.Defaults.TimeoutSecs; t > 0 {
		return t
	}
	return DefaultTimeout
}

// topoOrder orders models upstream first; among ready models, source order
// (file, line) decides, so the order is stable.
func (b *builder) topoOrder() []*Model {
	indeg := map[*Model]int{}
	readers := map[*Model][]*Model{}
	for _, m := range b.models {
		ups := map[*Model]bool{}
		for _, up := range b.edges[m] {
			if !ups[up] {
				ups[up] = true
				indeg[m]++
				readers[up] = append(readers[up], m)
			}
		}
	}
	var ready, out []*Model
	for _, m := range b.models {
		if indeg[m] == 0 {
			ready = append(ready, m)
		}
	}
	for len(ready) > 0 {
		sort.Slice(ready, func(i, j int) bool { return sourceLess(ready[i], ready[j]) })
		m := ready[0]
		ready = ready[1:]
		out = append(out, m)
		for _, r := range readers[m] {
			indeg[r]--
			if indeg[r] == 0 {
				ready = append(ready, r)
			}
		}
	}
	return out
}

// addWarnings notes what does not stop the plan but may surprise.
func (b *builder) addWarnings(p *Plan) {
	var ws diags
	for _, n := range p.Models {
		if n.Python != nil && n.Python.Interpreter == "missing" {
			ws.add(n.File, n.Line, "%s needs Python %s, which is not on this machine (it has %s)", n.Name, n.Python.Version, b.machinePythons())
		}
		if n.Kind == "model" && len(n.Downstream) == 0 && n.Output.Materialization == MatNone {
			ws.add(n.File, n.Line, "%s is not materialized and nothing reads it, so its output is dropped", n.Name)
		}
	}
	ws = append(ws, b.unusedParams()...)
	p.Warnings = nonNil(append(p.Warnings, ws...))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
