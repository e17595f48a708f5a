package planner

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// A SQL model is NAME.sql. Leading comment lines configure it:
//
//	-- lakehouse: materialization=REPLACE namespace=sales
//	-- lakehouse: partitioned_by=country,day(ts)
//	-- lakehouse: overwrite_filter="ts >= '2026-01-01'"
//	SELECT country, sum(usd) AS usd FROM euro_selection GROUP BY country
//
// Keys: materialization, partitioned_by, overwrite_filter, namespace,
// columns (declared output columns), cache. Values with spaces are quoted.

var sqlHeaderKeys = []string{"materialization", "partitioned_by", "overwrite_filter", "namespace", "columns", "cache"}

// HeaderEntry is one key=value of a SQL model's header.
type HeaderEntry struct {
	Key, Value string
	Line       int
}

var headerRE = regexp.MustCompile(`^--\s*lakehouse\s*:(.*)$`)

// ParseSQLHeader reads the `-- lakehouse: key=value` lines at the top of a
// SQL model. It returns the entries and problems (for file); a header line
// after the SQL has started is a problem too.
func ParseSQLHeader(file, src string) ([]HeaderEntry, []Diagnostic) {
	var ds diags
	var out []HeaderEntry
	inHeader := true
	for i, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		m := headerRE.FindStringSubmatch(t)
		if m == nil {
			if t != "" && !strings.HasPrefix(t, "--") {
				inHeader = false
			}
			continue
		}
		if !inHeader {
			ds.add(file, i+1, "-- lakehouse: lines configure the model only at the top of the file, before the SQL; move this one up")
			continue
		}
		out = append(out, parseHeaderPairs(file, i+1, m[1], &ds)...)
	}
	return out, ds
}

func parseHeaderPairs(file string, line int, s string, ds *diags) []HeaderEntry {
	var out []HeaderEntry
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return out
		}
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		key := s[i:j]
		if j >= len(s) || s[j] != '=' {
			ds.add(file, line, "header %q: write key=value (e.g. materialization=REPLACE)", strings.TrimSpace(s[i:]))
			return out
		}
		j++ // '='
		var val strings.Builder
		if j < len(s) && (s[j] == '"' || s[j] == '\'') {
			q := s[j]
			j++
			closed := false
			for j < len(s) {
				c := s[j]
				if c == '\\' && j+1 < len(s) && (s[j+1] == q || s[j+1] == '\\') {
					val.WriteByte(s[j+1])
					j += 2
					continue
				}
				if c == q {
					closed = true
					j++
					break
				}
				val.WriteByte(c)
				j++
			}
			if !closed {
				ds.add(file, line, "header %s: unterminated quote", key)
				return out
			}
		} else {
			for j < len(s) && s[j] != ' ' && s[j] != '\t' {
				val.WriteByte(s[j])
				j++
			}
		}
		out = append(out, HeaderEntry{Key: key, Value: val.String(), Line: line})
		i = j
	}
}

// decodeSQLModel builds a SQL model from a file's text. Its inputs are
// filled in later by the SQL parser.
func decodeSQLModel(file, src string, ds *diags) *Model {
	name := strings.TrimSuffix(filepath.Base(file), ".sql")
	m := &Model{Name: name, Language: LangSQL, File: file, Line: 1, Materialization: MatNone, Cache: true}
	if !identRE.MatchString(name) {
		ds.add(file, 0, "SQL model name %q (the file name): use letters, digits and '_', starting with a letter or '_'", name)
		return nil
	}
	entries, hd := ParseSQLHeader(file, src)
	*ds = append(*ds, hd...)
	seen := map[string]int{}
	for _, e := range entries {
		if !contains(sqlHeaderKeys, e.Key) {
			ds.add(file, e.Line, "unknown header key %q%s; keys: %s", e.Key, didYouMean(e.Key, sqlHeaderKeys), strings.Join(sqlHeaderKeys, ", "))
			continue
		}
		if prev, dup := seen[e.Key]; dup {
			ds.add(file, e.Line, "header key %s is set twice (first at line %d)", e.Key, prev)
			continue
		}
		seen[e.Key] = e.Line
		switch e.Key {
		case "materialization":
			m.MatLine = e.Line
			v := strings.ToUpper(e.Value)
			if !contains(materializations, v) {
				ds.add(file, e.Line, "unknown materialization %q%s; use NONE, REPLACE, APPEND or OVERWRITE_PARTITIONS",
					e.Value, didYouMean(v, materializations))
				continue
			}
			m.Materialization = v
		case "partitioned_by":
			m.PartitionedBy = splitList(e.Value)
		case "columns":
			m.Columns = splitList(e.Value)
		case "overwrite_filter":
			m.OverwriteFilter = e.Value
		case "namespace":
			m.Namespace, m.NSLine = e.Value, e.Line
		case "cache":
			b, err := strconv.ParseBool(e.Value)
			if err != nil {
				ds.add(file, e.Line, "header cache=%s: use true or false", e.Value)
				continue
			}
			m.Cache = b
		}
	}
	m.SQL = src
	return m
}

// splitList splits "a, b,day(ts)" at commas outside parentheses.
func splitList(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' && depth == 0 {
			if p := strings.TrimSpace(s[start:i]); p != "" {
				out = append(out, p)
			}
			start = i + 1
			continue
		}
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		}
	}
	return out
}

// substituteParams replaces $name by the SQL literal of parameter name,
// outside string literals, quoted identifiers and comments. $1-style
// placeholders are left alone. Unknown names are problems.
func substituteParams(m *Model, params map[string]ParamValue, declared []string, ds *diags) {
	m.SQL = substituteSQL(m, m.SQL, 1, params, declared, ds)
}

// substituteFilters replaces $name in a Python model's input filters and
// overwrite_filter, so parameters reach the scans and writes they filter.
func substituteFilters(m *Model, params map[string]ParamValue, declared []string, ds *diags) {
	for _, in := range m.Inputs {
		if strings.Contains(in.Filter, "$") {
			in.Filter = substituteSQL(m, in.Filter, in.Line, params, declared, ds)
		}
	}
	if strings.Contains(m.OverwriteFilter, "$") {
		line := m.MatLine
		if line == 0 {
			line = m.Line
		}
		m.OverwriteFilter = substituteSQL(m, m.OverwriteFilter, line, params, declared, ds)
	}
}

// substituteSQL does the substitution of substituteParams on src, whose
// first line is line firstLine of m.File.
func substituteSQL(m *Model, src string, firstLine int, params map[string]ParamValue, declared []string, ds *diags) string {
	var b strings.Builder
	line := firstLine
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			b.WriteByte(c)
			i++
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(src) {
				if src[j] == c {
					if j+1 < len(src) && src[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(src))
			line += strings.Count(src[i:j], "\n")
			b.WriteString(src[i:j])
			i = j
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = len(src) - i
			}
			b.WriteString(src[i : i+j])
			i += j
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			j := strings.Index(src[i+2:], "*/")
			end := len(src)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			line += strings.Count(src[i:end], "\n")
			b.WriteString(src[i:end])
			i = end
		case c == '$' && i+1 < len(src) && isIdentStart(src[i+1]):
			j := i + 1
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			name := src[i+1 : j]
			pv, ok := params[name]
			switch {
			case ok:
				if pv.Value == nil {
					ds.add(m.File, line, "$%s: parameter %s has no value; pass --param %s=VALUE or give it a default in %s", name, name, name, ConfigFile)
				}
				b.WriteString(sqlLiteral(pv.Value))
				if !usesParam(m, name) {
					m.Params = append(m.Params, ParamUse{Name: name, Line: line})
				}
			case contains(declared, name):
				b.WriteString(src[i:j]) // declared but invalid: reported already
			default:
				ds.add(m.File, line, "$%s: unknown parameter%s; declare it under parameters: in %s", name, didYouMean(name, declared), ConfigFile)
				b.WriteString(src[i:j])
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// usesParam reports whether m already receives parameter name (as a $name
// of its SQL or a filter; a Python argument bound to it counts too).
func usesParam(m *Model, name string) bool {
	for _, u := range m.Params {
		if u.Name == name && (m.Language == LangSQL || u.Param == "") {
			return true
		}
	}
	return false
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// lineAt is the 1-based line of byte offset pos in s.
func lineAt(s string, pos int) int {
	if pos < 0 || pos > len(s) {
		return 1
	}
	return strings.Count(s[:pos], "\n") + 1
}
