package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteTree renders the plan for a person: a header, the DAG drawn with box
// characters (each catalog table a root, each model on one line under the
// input it reads first; other inputs are named on its line, and its
// timeout when it is not the plan's), warnings,
// then a line per fused chain ("fused: a → b → c run in one interpreter,
// …").
//
//	pipeline euro_report at alice.dev (commit 3f9a1c2e1234), namespace sales: 3 models, 1 expectation, timeout 1h each
//	sales.transactions (snapshot 5512)
//	└── euro_selection  python 3.11  pandas==2.2.3  reads id, usd, country where country IN ('IT', 'FR')
//	    └── usd_by_country  python 3.10  pandas==1.5.3  → REPLACE sales.usd_by_country
//	        └── usd_not_null  expectation  python 3.11
func (p *Plan) WriteTree(w io.Writer) error {
	var b strings.Builder
	models, exps := 0, 0
	for _, n := range p.Models {
		if n.Kind == "expectation" {
			exps++
		} else {
			models++
		}
	}
	counts := fmt.Sprintf("%d model%s", models, plural(models))
	if exps > 0 {
		counts += fmt.Sprintf(", %d expectation%s", exps, plural(exps))
	}
	if p.TimeoutSecs > 0 {
		counts += ", timeout " + FormatSeconds(p.TimeoutSecs) + " each"
	}
	fmt.Fprintf(&b, "pipeline %s at %s (commit %s), namespace %s: %s\n", p.Project, p.Ref, short(p.Commit), p.Namespace, counts)
	if len(p.Parameters) > 0 {
		var ps []string
		for _, pv := range p.Parameters {
			ps = append(ps, fmt.Sprintf("%s=%s", pv.Name, renderValue(pv.Value)))
		}
		fmt.Fprintf(&b, "parameters: %s\n", strings.Join(ps, ", "))
	}

	// Each model hangs under the first input it reads.
	children := map[string][]*Node{}
	var roots []string
	rootSeen := map[string]bool{}
	for _, t := range p.Tables {
		key := tableKey(t.Table, t.Ref, p.Ref)
		if !rootSeen[key] {
			rootSeen[key] = true
			roots = append(roots, key)
		}
	}
	var orphans []*Node
	for _, n := range p.Models {
		if len(n.Inputs) == 0 {
			orphans = append(orphans, n)
			continue
		}
		first := n.Inputs[0]
		parent := "model " + first.Model
		if first.Source == SourceTable {
			parent = tableKey(first.Table, first.Ref, p.Ref)
		}
		children[parent] = append(children[parent], n)
	}
	snap := map[string]int64{}
	for _, t := range p.Tables {
		snap[tableKey(t.Table, t.Ref, p.Ref)] = t.SnapshotID
	}
	// Deep chains continue as new roots, so lines stay readable.
	type deferred struct {
		n      *Node
		parent string
	}
	var later []deferred
	var walk func(key, prefix string, depth int)
	walk = func(key, prefix string, depth int) {
		kids := children[key]
		for i, n := range kids {
			branch, indent := "├── ", "│   "
			if i == len(kids)-1 {
				branch, indent = "└── ", "    "
			}
			if depth == maxTreeDepth {
				b.WriteString(prefix + branch + "… " + n.Name + " continues below\n")
				later = append(later, deferred{n, strings.TrimPrefix(key, "model ")})
				continue
			}
			b.WriteString(prefix + branch + p.nodeLine(n) + "\n")
			walk("model "+n.Name, prefix+indent, depth+1)
		}
	}
	for _, r := range roots {
		label := r
		if s := snap[r]; s != 0 {
			label += fmt.Sprintf(" (snapshot %d)", s)
		} else {
			label += " (empty)"
		}
		b.WriteString(label + "\n")
		walk(r, "", 0)
	}
	for _, n := range orphans {
		b.WriteString(p.nodeLine(n) + "\n")
		walk("model "+n.Name, "", 1)
	}
	for len(later) > 0 {
		d := later[0]
		later = later[1:]
		b.WriteString("… " + d.parent + "\n")
		b.WriteString("└── " + p.nodeLine(d.n) + "\n")
		walk("model "+d.n.Name, "    ", 1)
	}
	if len(p.Warnings) > 0 {
		b.WriteString("warnings:\n")
		for _, d := range p.Warnings {
			b.WriteString("  " + d.String() + "\n")
		}
	}
	for _, c := range p.Chains {
		fmt.Fprintf(&b, "fused: %s run in one interpreter, each table handed to the next in memory (--no-fuse runs them apart)\n",
			strings.Join(c, " → "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// maxTreeDepth is how deep the tree nests before a chain continues as a
// new root.
const maxTreeDepth = 12

func tableKey(table, ref, planRef string) string {
	if ref == "" || ref == planRef {
		return table
	}
	return table + "@" + ref
}

func (p *Plan) nodeLine(n *Node) string {
	parts := []string{n.Name}
	if n.Kind == "expectation" {
		parts = append(parts, "expectation")
	}
	if n.Python != nil {
		py := "python " + n.Python.Version
		if n.Python.Interpreter == "missing" {
			py += " (missing)"
		}
		parts = append(parts, py)
		var reqs []string
		for _, r := range n.Python.Requirements {
			if !contains(n.Python.Added, r) {
				reqs = append(reqs, r)
			}
		}
		if len(reqs) > 0 {
			parts = append(parts, strings.Join(reqs, " "))
		}
	} else {
		parts = append(parts, "sql")
	}
	if len(n.Inputs) > 0 {
		first := n.Inputs[0]
		var scan []string
		if len(first.Columns) > 0 {
			scan = append(scan, "reads "+strings.Join(first.Columns, ", "))
		}
		if first.Filter != "" {
			scan = append(scan, "where "+first.Filter)
		}
		if len(scan) > 0 {
			parts = append(parts, strings.Join(scan, " "))
		}
	}
	var also []string
	for _, in := range n.Inputs[min(1, len(n.Inputs)):] {
		if in.Source == SourceModel {
			also = append(also, in.Model)
		} else {
			also = append(also, tableKey(in.Table, in.Ref, ""))
		}
	}
	if len(also) > 0 {
		parts = append(parts, "+ "+strings.Join(also, ", "))
	}
	if n.Output.Table != "" {
		out := "→ " + n.Output.Materialization + " " + n.Output.Table
		if len(n.Output.PartitionedBy) > 0 {
			out += " partitioned by " + strings.Join(n.Output.PartitionedBy, ", ")
		}
		parts = append(parts, out)
	}
	if t := n.Resources.TimeoutSecs; t > 0 && t != p.TimeoutSecs {
		parts = append(parts, "timeout "+FormatSeconds(t))
	}
	return strings.Join(parts, "  ")
}

// FormatSeconds writes a timeout for people: "1h", "30m", "1h30m", "45s".
func FormatSeconds(secs int64) string {
	h, m, s := secs/3600, secs/60%60, secs%60
	var out string
	if h > 0 {
		out += fmt.Sprintf("%dh", h)
	}
	if m > 0 {
		out += fmt.Sprintf("%dm", m)
	}
	if s > 0 || out == "" {
		out += fmt.Sprintf("%ds", s)
	}
	return out
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func renderValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "(unset)"
	case string:
		return fmt.Sprintf("%q", x)
	case float64:
		return sqlLiteral(x)
	default:
		return fmt.Sprint(x)
	}
}

// WriteJSON writes the plan's stable JSON form: indented, keys in a fixed
// order, no HTML escaping (SQL keeps its < and >).
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}
