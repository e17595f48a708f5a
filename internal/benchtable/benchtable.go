// Package benchtable prints the comparison tables of the repository's
// benchmarks: one row a measure, ours beside the baseline measured in the
// same run, and their ratio.
package benchtable

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Format writes title, then header and rows as aligned columns (the first
// left-aligned, the others right-aligned), then each note, indented.
func Format(title string, header [4]string, rows [][4]string, notes []string) string {
	all := append([][4]string{header}, rows...)
	var width [4]int
	for _, r := range all {
		for i, cell := range r {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	var sb strings.Builder
	sb.WriteString(title + "\n")
	for _, r := range all {
		fmt.Fprintf(&sb, "  %-*s", width[0], r[0])
		for i := 1; i < len(r); i++ {
			fmt.Fprintf(&sb, "  %*s", width[i], r[i])
		}
		sb.WriteString("\n")
	}
	for _, n := range notes {
		sb.WriteString("  " + n + "\n")
	}
	return sb.String()
}
