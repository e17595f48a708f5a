package planner

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Decoding of the literal arguments the extractor reports: each is JSON
// (None is null, tuples are lists). Every helper reports a wrong type as a
// diagnostic at the argument's line.

// bindArgs maps positional and keyword arguments to names. Arguments that
// were not literals are dropped (the extractor reported them).
func bindArgs(file, label string, names []string, args []literal, kwargs map[string]literal, ds *diags) map[string]literal {
	out := map[string]literal{}
	for i, a := range args {
		if i >= len(names) {
			ds.add(file, a.Line, "%s takes at most %d positional argument%s (%s)", label, len(names), plural(len(names)), strings.Join(names, ", "))
			break
		}
		if a.OK {
			out[names[i]] = a
		}
	}
	for _, k := range sortedKeys(kwargs) {
		a := kwargs[k]
		if !contains(names, k) {
			if len(names) == 0 {
				ds.add(file, a.Line, "%s takes no arguments", label)
			} else {
				ds.add(file, a.Line, "%s has no argument %s%s; it takes %s", label, k, didYouMean(k, names), strings.Join(names, ", "))
			}
			continue
		}
		if i := indexOf(names, k); i < len(args) {
			ds.add(file, a.Line, "%s: argument %s is given twice (by position and by name)", label, k)
			continue
		}
		if a.OK {
			out[k] = a
		}
	}
	return out
}

var memRE = regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*([KMGT]?)(I?)B?$`)

// parseMemory accepts bytes (an integer) or "512MB", "4GiB", "2G".
func parseMemory(raw json.RawMessage) (int64, error) {
	var n int64
	if err := json.Unmarshal(raw, &n); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("must be above 0")
		}
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf(`use bytes or a size such as "4GB" or "512MiB"`)
	}
	mm := memRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(s)))
	if mm == nil {
		return 0, fmt.Errorf(`use bytes or a size such as "4GB" or "512MiB"`)
	}
	v, _ := strconv.ParseFloat(mm[1], 64)
	base := 1000.0
	if mm[3] != "" {
		base = 1024
	}
	exp := strings.Index("KMGT", mm[2]) + 1
	if mm[2] == "" {
		exp = 0
	}
	v *= math.Pow(base, float64(exp))
	if v < 1 || v > 1<<50 {
		return 0, fmt.Errorf("is out of range")
	}
	return int64(v), nil
}

// parseTimeout accepts seconds (an integer) or a duration ("10m", "1h30m").
func parseTimeout(raw json.RawMessage) (int64, error) {
	var n float64
	if err := json.Unmarshal(raw, &n); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("must be above 0 seconds")
		}
		return int64(math.Ceil(n)), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return int64(math.Ceil(d.Seconds())), nil
		}
	}
	return 0, fmt.Errorf(`use seconds or a duration such as "10m"`)
}

func isNull(a literal) bool { return string(a.Value) == "null" }

func str(file, what string, a literal, ds *diags) (string, bool) {
	var s string
	if err := json.Unmarshal(a.Value, &s); err != nil {
		ds.add(file, a.Line, "%s must be a string, not %s", what, string(a.Value))
		return "", false
	}
	return s, true
}

func optStr(file, what string, a literal, ds *diags) (string, bool) {
	if isNull(a) {
		return "", true
	}
	return str(file, what, a, ds)
}

func boolean(file, what string, a literal, ds *diags) (bool, bool) {
	var b bool
	if err := json.Unmarshal(a.Value, &b); err != nil {
		ds.add(file, a.Line, "%s must be True or False, not %s", what, string(a.Value))
		return false, false
	}
	return b, true
}

// strList accepts a list of strings or one string.
func strList(file, what string, a literal, ds *diags) ([]string, bool) {
	if isNull(a) {
		return nil, true
	}
	var s string
	if json.Unmarshal(a.Value, &s) == nil {
		return []string{s}, true
	}
	var l []string
	if err := json.Unmarshal(a.Value, &l); err != nil {
		ds.add(file, a.Line, "%s must be a list of strings, not %s", what, string(a.Value))
		return nil, false
	}
	return l, true
}

// strMap accepts {"name": "version" or None}.
func strMap(file, what string, a literal, ds *diags) (map[string]string, bool) {
	if isNull(a) {
		return nil, true
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(a.Value, &raw); err != nil {
		ds.add(file, a.Line, `%s must be a dict of package names to version strings, e.g. {"pandas": "2.2.3"}`, what)
		return nil, false
	}
	out := map[string]string{}
	ok := true
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		var s string
		if string(v) == "null" {
			out[k] = ""
			continue
		}
		if err := json.Unmarshal(v, &s); err != nil {
			ds.add(file, a.Line, `%s: the version of %s must be a string, not %s (write "%s")`, what, k, string(v), strings.Trim(string(v), `"`))
			ok = false
			continue
		}
		out[k] = s
	}
	return out, ok
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
