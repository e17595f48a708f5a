package planner

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzProjectYAML parses arbitrary lakehouse.yml text: it must never
// panic, and every problem must point at a line of the file.
func FuzzProjectYAML(f *testing.F) {
	for _, s := range []string{
		"",
		"project:\n  name: euro\ndefaults:\n  python: \"3.11\"\n  namespace: sales\n  pip: {pandas: \"2.2.3\"}\n",
		"parameters:\n  min_usd: {type: float, default: 0, required: false, description: x}\n",
		"parameters:\n  n: {type: int, default: \"3\"}\n  b: {type: bool, default: yes}\n",
		"defaults:\n  python: 3.10\n",
		"project: [1, 2]\n",
		"- a\n- b\n",
		"project:\n  name: &a x\n  description: *a\n",
		"{{{",
		"parameters:\n  x:\n    type: str\n    default: [1]\n",
		"defaults:\n  pyhton: 3\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, ds := ParseConfig([]byte(s))
		if cfg == nil {
			t.Fatal("nil config")
		}
		// YAML breaks lines at \n, \r and \r\n, and yaml.v3 at NEL, LS and
		// PS too.
		lines := strings.Count(s, "\n") + strings.Count(s, "\r") + strings.Count(s, "\u0085") +
			strings.Count(s, "\u2028") + strings.Count(s, "\u2029") + 1
		for _, d := range ds {
			if d.File != ConfigFile || d.Line < 0 || d.Line > lines+1 {
				t.Fatalf("diagnostic %v outside the file (%d lines)", d, lines)
			}
			if d.Msg == "" {
				t.Fatalf("empty diagnostic at line %d", d.Line)
			}
		}
		for _, p := range cfg.Params {
			if !identRE.MatchString(p.Name) {
				t.Fatalf("accepted parameter name %q", p.Name)
			}
			if p.Default != nil {
				if _, err := p.Type.Parse(renderDefault(p.Default)); err != nil {
					t.Fatalf("default %v of %s does not round-trip: %v", p.Default, p.Type, err)
				}
			}
		}
	})
}

func renderDefault(v any) string {
	switch x := v.(type) {
	case string:
		return x
	default:
		return strings.Trim(sqlLiteral(x), "'")
	}
}

// FuzzSQLHeader parses arbitrary SQL model text: header entries must come
// from lines that exist, and $param substitution must keep the line count.
func FuzzSQLHeader(f *testing.F) {
	for _, s := range []string{
		"-- lakehouse: materialization=REPLACE\nSELECT 1",
		"-- lakehouse: partitioned_by=country,day(ts) overwrite_filter=\"ts > '2026-01-01'\"\nSELECT * FROM t",
		"-- lakehouse: a\n-- lakehouse: b=\"unterminated\nSELECT $x FROM t WHERE y = '$y' -- $z\n/* $w */",
		"SELECT 1\n-- lakehouse: namespace=late",
		"-- lakehouse: cache=maybe columns=a,b\n\n\nSELECT $1, $min_usd",
		"--lakehouse:materialization=NONE\r\nSELECT 'it''s' AS s",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines := strings.Count(s, "\n") + 1
		entries, ds := ParseSQLHeader("m.sql", s)
		for _, e := range entries {
			if e.Line < 1 || e.Line > lines {
				t.Fatalf("entry %+v outside the file", e)
			}
		}
		for _, d := range ds {
			if d.Line < 1 || d.Line > lines {
				t.Fatalf("diagnostic %v outside the file", d)
			}
		}
		var sink diags
		m := decodeSQLModel("m.sql", s, &sink)
		if m == nil {
			t.Fatal("no model for a valid file name")
		}
		params := map[string]ParamValue{
			"x":       {Name: "x", Type: ParamStr, Value: "a'b"},
			"min_usd": {Name: "min_usd", Type: ParamFloat, Value: 1.5},
		}
		before := strings.Count(m.SQL, "\n")
		substituteParams(m, params, []string{"x", "min_usd"}, &sink)
		// Values without newlines must keep every line where it was, so
		// errors DuckDB reports still point at the user's line.
		if after := strings.Count(m.SQL, "\n"); after != before {
			t.Fatalf("substitution changed the line count from %d to %d:\n%s", before, after, m.SQL)
		}
		for _, d := range sink {
			if d.Line < 0 || d.Line > lines {
				t.Fatalf("diagnostic %v outside the file", d)
			}
		}
		if utf8.ValidString(s) && !utf8.ValidString(m.SQL) {
			t.Fatal("substitution broke UTF-8")
		}
	})
}

// TestConfigNotUTF8: a lakehouse.yml saved as UTF-16 (or any bytes that
// are not UTF-8) is one diagnostic saying so, at the line it goes wrong.
func TestConfigNotUTF8(t *testing.T) {
	for name, c := range map[string]struct {
		data string
		line int
	}{
		"utf-16 with a byte order mark": {"\xfe\xff\x00p\x00r", 1},
		"latin-1 on line 2":             {"project:\n  name: caf\xe9\n", 2},
	} {
		_, ds := ParseConfig([]byte(c.data))
		if len(ds) != 1 || ds[0].Line != c.line || !strings.Contains(ds[0].Msg, "not UTF-8") {
			t.Errorf("%s: %v", name, ds)
		}
	}
}
