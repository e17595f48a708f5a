package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// emit writes v as indented JSON under -O json, else calls human. Every
// command prints through emit, so each has both forms.
func (e *Env) emit(v any, human func(w io.Writer) error) error {
	if e.JSON() {
		return writeJSON(e.Stdout, v)
	}
	return human(e.Stdout)
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// color says whether output to stdout may use ANSI colours: only on a
// terminal, and not when NO_COLOR is set.
func (e *Env) color() bool { return e.StdoutTTY && e.Getenv(envNoColor) == "" }

const (
	ansiBold  = "\x1b[1m"
	ansiGreen = "\x1b[32m"
	ansiReset = "\x1b[0m"
)

// table renders aligned columns separated by two spaces. The last column is
// not padded, so long messages do not push the others.
type table struct {
	header []string
	rows   [][]string
	color  bool
}

func (e *Env) newTable(header ...string) *table {
	return &table{header: header, color: e.color()}
}

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			if n := utf8.RuneCountInString(c); i < len(widths) && n > widths[i] {
				widths[i] = n
			}
		}
	}
	var b strings.Builder
	line := func(r []string, header bool) {
		var l strings.Builder
		for i, c := range r {
			if i > 0 {
				l.WriteString("  ")
			}
			l.WriteString(c)
			if i < len(r)-1 {
				l.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
			}
		}
		s := strings.TrimRight(l.String(), " ")
		if header && t.color {
			s = ansiBold + s + ansiReset
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	line(t.header, true)
	for _, r := range t.rows {
		line(r, false)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fields renders "key: value" lines with the values aligned.
type fields struct {
	keys, values []string
}

func (f *fields) add(key, value string) {
	f.keys = append(f.keys, key)
	f.values = append(f.values, value)
}

func (f *fields) write(w io.Writer) error {
	width := 0
	for _, k := range f.keys {
		width = max(width, len(k)+1)
	}
	var b strings.Builder
	for i, k := range f.keys {
		fmt.Fprintf(&b, "%-*s %s\n", width, k+":", f.values[i])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatTime renders a time for people: RFC 3339 in UTC, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// orDash renders an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// firstLine is the subject of a commit message.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// commitView is a commit in JSON output.
type commitView struct {
	ID         string            `json:"id"`
	Parents    []string          `json:"parents"`
	Time       time.Time         `json:"time"`
	Author     string            `json:"author"`
	Message    string            `json:"message"`
	RunID      string            `json:"run_id,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
}

func viewCommit(c *catalog.Commit) *commitView {
	if c == nil {
		return nil
	}
	v := &commitView{
		ID:         string(c.ID),
		Parents:    make([]string, 0, len(c.Parents)),
		Time:       c.Time.UTC(),
		Author:     c.Author,
		Message:    c.Message,
		RunID:      c.Properties[catalog.PropRunID],
		Properties: c.Properties,
	}
	for _, p := range c.Parents {
		v.Parents = append(v.Parents, string(p))
	}
	return v
}

func viewCommits(cs []*catalog.Commit) []*commitView {
	out := make([]*commitView, 0, len(cs))
	for _, c := range cs {
		out = append(out, viewCommit(c))
	}
	return out
}

// commitID is the JSON form of a commit's id, "" for none.
func commitID(c *catalog.Commit) string {
	if c == nil {
		return ""
	}
	return string(c.ID)
}

// shortID is the human form of a commit's id, "-" for none.
func shortID(c *catalog.Commit) string {
	if c == nil {
		return "-"
	}
	return c.ID.Short()
}

// plural renders "1 file" or "3 files".
func plural(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// humanBytes renders a size: 512 B, 3.4 KiB, 12.0 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// nonNil returns s, or an empty slice for nil, so JSON shows [] not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
