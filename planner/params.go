package planner

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ParamType is the type of a project parameter.
type ParamType string

const (
	ParamInt   ParamType = "int"
	ParamFloat ParamType = "float"
	ParamStr   ParamType = "str"
	ParamBool  ParamType = "bool"
)

var paramTypes = []string{"int", "float", "str", "bool"}

func parseParamType(s string) (ParamType, error) {
	switch s {
	case "int", "float", "str", "bool":
		return ParamType(s), nil
	case "string":
		return ParamStr, nil
	case "integer":
		return ParamInt, nil
	case "boolean":
		return ParamBool, nil
	}
	return "", fmt.Errorf("unknown type %q%s; use int, float, str or bool", s, didYouMean(s, paramTypes))
}

// parseYAML converts a YAML scalar to a value of type t.
func (t ParamType) parseYAML(n *yaml.Node) (any, error) {
	if t == ParamStr {
		if n.Tag != "!!str" {
			return nil, fmt.Errorf("%s is not a str; quote it", n.Value)
		}
		return n.Value, nil
	}
	if n.Tag == "!!str" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		return nil, fmt.Errorf("%q is a quoted string, not a %s", n.Value, t)
	}
	return t.Parse(n.Value)
}

// Parse converts the text of a value (from --param or YAML) to type t:
// int64, float64, string or bool.
func (t ParamType) Parse(s string) (any, error) {
	switch t {
	case ParamInt:
		v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an int", s)
		}
		return v, nil
	case ParamFloat:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("%q is not a float", s)
		}
		return v, nil
	case ParamBool:
		switch strings.ToLower(s) {
		case "true", "yes", "on", "1":
			return true, nil
		case "false", "no", "off", "0":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not a bool (use true or false)", s)
	default:
		return s, nil
	}
}

// ParamValue is a parameter's value in a plan.
type ParamValue struct {
	Name  string    `json:"name"`
	Type  ParamType `json:"type"`
	Value any       `json:"value"`
	// Source is "default" or "command line".
	Source string `json:"source"`
}

// ParseParamFlags splits --param k=v flags into a map. A flag without '='
// is a diagnostic.
func ParseParamFlags(flags []string) (map[string]string, []Diagnostic) {
	out := map[string]string{}
	var ds diags
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			ds.add("", 0, "--param %q: write --param NAME=VALUE", f)
			continue
		}
		if _, dup := out[k]; dup {
			ds.add("", 0, "--param %s is given twice", k)
			continue
		}
		out[k] = v
	}
	return out, ds
}

// bindParams resolves every declared parameter's value from the command
// line or its default.
func bindParams(cfg *Config, given map[string]string) (map[string]ParamValue, []ParamValue, []Diagnostic) {
	var ds diags
	byName := map[string]ParamValue{}
	var list []ParamValue
	names := make([]string, 0, len(cfg.Params))
	for _, p := range cfg.Params {
		names = append(names, p.Name)
	}
	keys := make([]string, 0, len(given))
	for k := range given {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !contains(names, k) {
			hint := "; declare it under parameters: in " + ConfigFile
			if len(names) == 0 {
				hint = "; this project declares no parameters (add them under parameters: in " + ConfigFile + ")"
			}
			ds.add("", 0, "--param %s: unknown parameter%s%s", k, didYouMean(k, names), hint)
		}
	}
	for _, p := range cfg.Params {
		pv := ParamValue{Name: p.Name, Type: p.Type}
		if s, ok := given[p.Name]; ok {
			v, err := p.Type.Parse(s)
			if err != nil {
				ds.add("", 0, "--param %s=%s: %v; parameter %s is declared as %s at %s:%d", p.Name, s, err, p.Name, p.Type, ConfigFile, p.Line)
				continue
			}
			pv.Value, pv.Source = v, "command line"
		} else if p.Default != nil {
			pv.Value, pv.Source = p.Default, "default"
		} else if p.Required {
			ds.add(ConfigFile, p.Line, "parameter %s is required and has no default; pass --param %s=VALUE (%s)", p.Name, p.Name, p.Type)
			continue
		} else {
			pv.Value, pv.Source = nil, "unset"
		}
		byName[p.Name] = pv
		list = append(list, pv)
	}
	return byName, list, ds
}

// sqlLiteral renders a parameter value for $param substitution in SQL.
func sqlLiteral(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case bool:
		if x {
			return "TRUE"
		}
		return "FALSE"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return s
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	}
	return fmt.Sprint(v)
}
