package sql

import (
	"fmt"
	"io"
	"strings"
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
