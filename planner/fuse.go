package planner

import (
	"path/filepath"
	"sort"
	"strings"
)

// Fused chains. A Python model whose output only the next Python model
// reads (not materialized, same environment, no memory limit, no filter
// on the way) hands its table to that model inside one interpreter: the
// chain runs as one invocation, and no table between its models is
// written, mapped or read back. Which models run fused depends only on
// the plan, so the planner decides it and the plan lists the chains
// (Plan.Chains); runtime/pipeline runs them as listed. Options.NoFuse
// plans every model on its own.

// Key identifies the environment: models whose keys are equal run with
// the same interpreter and packages (one environment is assembled for
// them all, and they may share an interpreter in a fused chain).
func (e *PythonEnv) Key() string {
	r := append([]string(nil), e.Requirements...)
	sort.Strings(r)
	return e.Version + "|" + strings.Join(r, ",")
}

// fuse lists the models to fuse, chain by chain, each in order (its
// first model runs the chain). A model joins the chain of the model it
// reads when it reads no other model and nothing else reads that one
// (see fusable for the rest).
func fuse(models []*Node) [][]string {
	byName := map[string]*Node{}
	readers := map[string]int{}
	for _, n := range models {
		byName[n.Name] = n
		for _, in := range n.Inputs {
			if in.Source == SourceModel {
				readers[in.Model]++
			}
		}
	}
	next := map[string]string{} // a -> b: b takes a's table in memory
	prev := map[string]bool{}
	for _, n := range models {
		var from *Input
		for i, in := range n.Inputs {
			if in.Source == SourceModel {
				if from != nil {
					from = nil // reads two models: runs on its own
					break
				}
				from = &n.Inputs[i]
			}
		}
		if from == nil || readers[from.Model] != 1 {
			continue
		}
		if a := byName[from.Model]; a != nil && fusable(a, n, *from) {
			next[a.Name], prev[n.Name] = n.Name, true
		}
	}
	chains := [][]string{}
	for _, n := range models {
		if prev[n.Name] || next[n.Name] == "" {
			continue
		}
		c := []string{n.Name}
		for b := next[n.Name]; b != ""; b = next[b] {
			c = append(c, b)
		}
		chains = append(chains, c)
	}
	return chains
}

// fusable reports whether model b may take model a's output (read as in)
// in a's interpreter.
func fusable(a, b *Node, in Input) bool {
	return a.Kind == "model" && b.Kind == "model" &&
		a.Language == LangPython && b.Language == LangPython &&
		a.Python != nil && b.Python != nil && a.Python.Key() == b.Python.Key() &&
		// A memory limit bounds one model's own memory; in a chain the
		// table it receives would count too (mapped from /dev/shm it does
		// not), so limited models run on their own.
		a.Resources.MemoryBytes == 0 && b.Resources.MemoryBytes == 0 && a.InternetAccess == b.InternetAccess &&
		a.Output.Materialization == MatNone &&
		filepath.Dir(a.File) == filepath.Dir(b.File) &&
		strings.TrimSpace(in.Filter) == ""
}
