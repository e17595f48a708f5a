package planner

import (
	"encoding/json"
	"strings"
)

// Materializations of a model's output.
const (
	MatNone                = "NONE"
	MatReplace             = "REPLACE"
	MatAppend              = "APPEND"
	MatOverwritePartitions = "OVERWRITE_PARTITIONS"
)

var materializations = []string{MatNone, MatReplace, MatAppend, MatOverwritePartitions}

// Languages of models.
const (
	LangPython = "python"
	LangSQL    = "sql"
)

// Model is a model or expectation as written in the project, before names
// are resolved.
type Model struct {
	Name        string
	Expectation bool
	Language    string
	File        string
	Line        int
	// Function is the Python function's name ("" for SQL).
	Function string

	Materialization string
	MatLine         int
	PartitionedBy   []string
	OverwriteFilter string
	InternetAccess  bool
	Cache           bool
	// Columns are the output columns (nil: unknown): declared, or derived
	// from a SQL model's select list (ColumnsDerived).
	Columns        []string
	ColumnsDerived bool
	Namespace      string
	NSLine         int

	Python     string
	PythonLine int
	Pip        map[string]string
	PipLine    int
	Resources  Resources
	ResLine    int

	Inputs []*InputSpec
	Params []ParamUse
	// SQL is the model's query after $param substitution.
	SQL string
}

// InputSpec is one input as written: lakehouse.Model(...) or a table
// reference in SQL.
type InputSpec struct {
	// Param is the Python argument ("" for SQL).
	Param   string
	Name    string
	Columns []string
	Filter  string
	Ref     string
	Line    int
}

// ParamUse is a lakehouse.Parameter(...) argument of a Python model, or a
// $param of a SQL model.
type ParamUse struct {
	Param string
	Name  string
	Line  int
}

// Resources of a model's function. Zero values mean the defaults (in a
// plan's nodes the timeout is always set: see Plan.TimeoutSecs).
type Resources struct {
	CPUs        float64 `json:"cpus,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	TimeoutSecs int64   `json:"timeout_seconds,omitempty"`
}

var decoratorNames = []string{"model", "python", "resources", "expectation"}

var decoratorArgs = map[string][]string{
	"model":       {"name", "materialization", "partitioned_by", "overwrite_filter", "internet_access", "cache", "columns", "namespace"},
	"python":      {"version", "pip"},
	"resources":   {"cpus", "memory", "timeout"},
	"expectation": {},
}

var markerArgs = map[string][]string{
	"Model":     {"name", "columns", "filter", "ref"},
	"Parameter": {"name"},
}

// decodeFunction turns an extracted function into a Model, or nil when it
// is not one (diagnostics say why).
func decodeFunction(file string, fn function, ds *diags) *Model {
	m := &Model{Name: fn.Name, Function: fn.Name, Language: LangPython, File: file, Line: fn.Line,
		Materialization: MatNone, Cache: true}
	seen := map[string]int{}
	isModel := false
	for _, d := range fn.Decorators {
		label := "@lakehouse." + d.Name
		if _, ok := decoratorArgs[d.Name]; !ok {
			if d.Name == "Model" || d.Name == "Parameter" {
				ds.add(file, d.Line, "lakehouse.%s is an input marker, not a decorator; use it as a parameter default: data=lakehouse.%s(...)", d.Name, d.Name)
			} else {
				ds.add(file, d.Line, "unknown decorator %s%s; the decorators are @lakehouse.model, @lakehouse.python, @lakehouse.resources and @lakehouse.expectation",
					label, didYouMean(d.Name, decoratorNames))
			}
			continue
		}
		if prev, dup := seen[d.Name]; dup {
			ds.add(file, d.Line, "%s appears twice on %s (first at line %d)", label, fn.Name, prev)
			continue
		}
		seen[d.Name] = d.Line
		if !d.Call {
			ds.add(file, d.Line, "%s needs parentheses: %s()", label, label)
			continue
		}
		args := bindArgs(file, label, decoratorArgs[d.Name], d.Args, d.Kwargs, ds)
		switch d.Name {
		case "model":
			isModel = true
			decodeModelArgs(m, file, args, ds)
		case "expectation":
			m.Expectation = true
		case "python":
			m.PythonLine = d.Line
			if a, ok := args["version"]; ok {
				m.Python, _ = str(file, "python version", a, ds)
			} else {
				ds.add(file, d.Line, `@lakehouse.python needs a version, e.g. @lakehouse.python("3.11")`)
			}
			if a, ok := args["pip"]; ok {
				m.Pip, _ = strMap(file, "pip", a, ds)
				m.PipLine = a.Line
			}
		case "resources":
			m.ResLine = d.Line
			decodeResources(m, file, args, ds)
		}
	}
	if isModel && m.Expectation {
		ds.add(file, fn.Line, "%s has both @lakehouse.model() and @lakehouse.expectation(); use one", fn.Name)
		return nil
	}
	if !isModel && !m.Expectation {
		if len(seen) > 0 {
			ds.add(file, fn.Line, "function %s has lakehouse decorators but neither @lakehouse.model() nor @lakehouse.expectation(); add one", fn.Name)
		}
		return nil
	}
	for _, p := range fn.Params {
		decodeParam(m, file, p, ds)
	}
	return m
}

func decodeModelArgs(m *Model, file string, args map[string]literal, ds *diags) {
	if a, ok := args["name"]; ok {
		if s, ok := str(file, "name", a, ds); ok {
			if !identRE.MatchString(s) {
				ds.add(file, a.Line, "model name %q: use letters, digits and '_', starting with a letter or '_'", s)
			} else {
				m.Name = s
			}
		}
	}
	if a, ok := args["materialization"]; ok {
		m.MatLine = a.Line
		if s, ok := str(file, "materialization", a, ds); ok {
			if !contains(materializations, s) {
				ds.add(file, a.Line, "unknown materialization %q%s; use NONE, REPLACE, APPEND or OVERWRITE_PARTITIONS",
					s, didYouMean(strings.ToUpper(s), materializations))
			} else {
				m.Materialization = s
			}
		}
	}
	if a, ok := args["partitioned_by"]; ok {
		m.PartitionedBy, _ = strList(file, "partitioned_by", a, ds)
	}
	if a, ok := args["overwrite_filter"]; ok {
		m.OverwriteFilter, _ = optStr(file, "overwrite_filter", a, ds)
	}
	if a, ok := args["internet_access"]; ok {
		m.InternetAccess, _ = boolean(file, "internet_access", a, ds)
	}
	if a, ok := args["cache"]; ok {
		m.Cache, _ = boolean(file, "cache", a, ds)
	}
	if a, ok := args["columns"]; ok {
		m.Columns, _ = strList(file, "columns", a, ds)
	}
	if a, ok := args["namespace"]; ok {
		m.Namespace, _ = optStr(file, "namespace", a, ds)
		m.NSLine = a.Line
	}
}

func decodeParam(m *Model, file string, p param, ds *diags) {
	switch p.Marker {
	case "Model":
		args := bindArgs(file, "lakehouse.Model", markerArgs["Model"], p.Args, p.Kwargs, ds)
		in := &InputSpec{Param: p.Name, Line: p.Line}
		a, ok := args["name"]
		if !ok {
			ds.add(file, p.Line, `lakehouse.Model needs a name: lakehouse.Model("transactions")`)
			return
		}
		if in.Name, ok = str(file, "the name of lakehouse.Model", a, ds); !ok {
			return
		}
		if a, ok := args["columns"]; ok {
			in.Columns, _ = strList(file, "columns", a, ds)
		}
		if a, ok := args["filter"]; ok {
			in.Filter, _ = optStr(file, "filter", a, ds)
		}
		if a, ok := args["ref"]; ok {
			in.Ref, _ = optStr(file, "ref", a, ds)
		}
		m.Inputs = append(m.Inputs, in)
	case "Parameter":
		args := bindArgs(file, "lakehouse.Parameter", markerArgs["Parameter"], p.Args, p.Kwargs, ds)
		a, ok := args["name"]
		if !ok {
			ds.add(file, p.Line, `lakehouse.Parameter needs a name: lakehouse.Parameter("min_usd")`)
			return
		}
		if name, ok := str(file, "the name of lakehouse.Parameter", a, ds); ok {
			m.Params = append(m.Params, ParamUse{Param: p.Name, Name: name, Line: p.Line})
		}
	case "":
		if p.Default != "" {
			ds.add(file, p.Line, "argument %s of %s defaults to %s; inputs are lakehouse.Model(...) and parameters lakehouse.Parameter(...)",
				p.Name, m.Function, p.Default)
		} else {
			ds.add(file, p.Line, `argument %s of %s has no default; give it lakehouse.Model("...") or lakehouse.Parameter("...")`, p.Name, m.Function)
		}
	default:
		ds.add(file, p.Line, "argument %s of %s defaults to lakehouse.%s(...); inputs are lakehouse.Model(...) and parameters lakehouse.Parameter(...)",
			p.Name, m.Function, p.Marker)
	}
}

func decodeResources(m *Model, file string, args map[string]literal, ds *diags) {
	if a, ok := args["cpus"]; ok && !isNull(a) {
		var v float64
		if err := json.Unmarshal(a.Value, &v); err != nil || v <= 0 || v > 1024 {
			ds.add(file, a.Line, "resources cpus must be a number above 0 (e.g. 2 or 0.5), not %s", string(a.Value))
		} else {
			m.Resources.CPUs = v
		}
	}
	if a, ok := args["memory"]; ok && !isNull(a) {
		if n, err := parseMemory(a.Value); err != nil {
			ds.add(file, a.Line, "resources memory %s: %v", string(a.Value), err)
		} else {
			m.Resources.MemoryBytes = n
		}
	}
	if a, ok := args["timeout"]; ok && !isNull(a) {
		if n, err := parseTimeout(a.Value); err != nil {
			ds.add(file, a.Line, "resources timeout %s: %v", string(a.Value), err)
		} else {
			m.Resources.TimeoutSecs = n
		}
	}
}
