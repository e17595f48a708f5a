package catalog

import (
	"maps"
	"slices"
)

// sameTable and sameNamespace tell whether two entries (each with whether
// it is present) are the same state.
func sameTable(x TableEntry, xok bool, y TableEntry, yok bool) bool {
	return xok == yok && x.MetadataLocation == y.MetadataLocation
}

func sameNamespace(x NamespaceEntry, xok bool, y NamespaceEntry, yok bool) bool {
	return xok == yok && maps.Equal(x.Properties, y.Properties)
}

// treeChanges returns the changes that turn tree from into tree to.
func treeChanges(from, to *Tree) Changes {
	return Changes{Tables: entryChanges(from.Tables, to.Tables, sameTable),
		Namespaces: entryChanges(from.Namespaces, to.Namespaces, sameNamespace)}
}

// entryChanges returns the entries of to that differ from from, nil for
// those to does not hold.
func entryChanges[K comparable, V any](from, to map[K]V, same func(V, bool, V, bool) bool) map[K]*V {
	out := map[K]*V{}
	for _, k := range unionKeys(from, to) {
		f, fok := from[k]
		e, eok := to[k]
		switch {
		case same(f, fok, e, eok):
		case eok:
			out[k] = &e
		default:
			out[k] = nil
		}
	}
	return out
}

// apply returns a copy of t with the changes made.
func (ch Changes) apply(t *Tree) *Tree {
	out := t.Clone()
	applyEntries(out.Namespaces, ch.Namespaces)
	applyEntries(out.Tables, ch.Tables)
	return out
}

func applyEntries[K comparable, V any](m map[K]V, ch map[K]*V) {
	for k, e := range ch {
		if e == nil {
			delete(m, k)
		} else {
			m[k] = *e
		}
	}
}

// movedBetween lists, sorted, the tables ("table ns.name") and namespaces
// ("namespace ns") that ch changes and that differ between trees a and b:
// what ch would overwrite if computed against a and applied to b.
func (ch Changes) movedBetween(a, b *Tree) []string {
	var moved []string
	for id := range ch.Tables {
		x, xok := a.Tables[id]
		y, yok := b.Tables[id]
		if !sameTable(x, xok, y, yok) {
			moved = append(moved, "table "+id.String())
		}
	}
	for ns := range ch.Namespaces {
		x, xok := a.Namespaces[ns]
		y, yok := b.Namespaces[ns]
		if !sameNamespace(x, xok, y, yok) {
			moved = append(moved, "namespace "+string(ns))
		}
	}
	slices.Sort(moved)
	return moved
}
