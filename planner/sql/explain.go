package sql

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// Explain writes the plan for people: the resolved ref and commit, then per
// table its snapshot, the files kept and pruned, and the pushed-down
// columns and filters. The text is deterministic.
func Explain(w io.Writer, p *Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ref:       %s\n", p.Ref)
	if p.Commit != nil {
		fmt.Fprintf(&b, "commit:    %s\n", p.Commit.ID)
	}
	fmt.Fprintf(&b, "namespace: %s\n", p.Namespace)
	if len(p.Tables) == 0 {
		b.WriteString("tables:    none\n")
	}
	for _, t := range p.Tables {
		fmt.Fprintf(&b, "\ntable %s\n", t.Ident)
		if t.SnapshotID == 0 {
			b.WriteString("  snapshot: none (empty table)\n")
		} else {
			fmt.Fprintf(&b, "  snapshot: %d\n", t.SnapshotID)
		}
		fmt.Fprintf(&b, "  files:    %d of %d kept, %d pruned\n", len(t.Files), t.TotalFiles, t.TotalFiles-len(t.Files))
		fmt.Fprintf(&b, "  rows:     %d in kept files\n", t.Records)
		if t.Cache != "" {
			fmt.Fprintf(&b, "  cache:    %s\n", t.Cache)
		}
		switch {
		case t.Columns == nil:
			b.WriteString("  columns:  all\n")
		case len(t.Columns) == 0:
			b.WriteString("  columns:  none (row count only)\n")
		default:
			cols := make([]string, len(t.Columns))
			for i, c := range t.Columns {
				cols[i] = displayIdent(c)
			}
			fmt.Fprintf(&b, "  columns:  %s\n", strings.Join(cols, ", "))
		}
		if len(t.Filters) == 0 {
			b.WriteString("  filters:  none\n")
		} else {
			fmt.Fprintf(&b, "  filters:  %s\n", strings.Join(t.Filters, " AND "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderFilter writes a predicate for explain output.
func renderFilter(p catalog.Predicate, column string) string {
	switch p.Op {
	case "isnull":
		return column + " IS NULL"
	case "notnull":
		return column + " IS NOT NULL"
	case "between":
		return column + " BETWEEN " + literalText(p.Values[0]) + " AND " + literalText(p.Values[1])
	case "in":
		vals := make([]string, len(p.Values))
		for i, v := range p.Values {
			vals[i] = literalText(v)
		}
		return column + " IN (" + strings.Join(vals, ", ") + ")"
	}
	return column + " " + p.Op + " " + literalText(p.Values[0])
}

// literalText renders a literal as SQL.
func literalText(l catalog.Literal) string {
	switch l.Type {
	case "VARCHAR":
		return "'" + strings.ReplaceAll(l.Text, "'", "''") + "'"
	case "DECIMAL":
		f, _ := l.Float()
		return strconv.FormatFloat(f, 'f', -1, 64)
	case "DATE", "TIMESTAMP", "TIME", "TIMESTAMPTZ":
		return l.Type + " '" + l.Text + "'"
	}
	return l.Text
}

// displayIdent renders an identifier for explain output: plain when it is
// a lower-case word, double-quoted otherwise.
func displayIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
