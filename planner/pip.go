package planner

import (
	"fmt"
	"regexp"
	"strings"
)

// Pip requirement checks: names per PEP 508 (with optional extras) and
// versions or specifiers per PEP 440. A bare version pins it exactly
// ("2.2.3" is ==2.2.3); "" or "*" accepts any version.
var (
	pipNameRE = regexp.MustCompile(`(?i)^([a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])(\[\s*[a-z0-9][a-z0-9._-]*(\s*,\s*[a-z0-9][a-z0-9._-]*)*\s*\])?$`)
	// A PEP 440 public version with an optional local part.
	pep440      = `v?(\d+!)?\d+(\.\d+)*((a|b|rc|alpha|beta|c|pre|preview)\.?\d*)?((\.|-|_)?(post|rev|r)\.?\d*)?((\.|-|_)?dev\.?\d*)?(\+[a-z0-9]+([._-][a-z0-9]+)*)?`
	versionRE   = regexp.MustCompile(`(?i)^` + pep440 + `$`)
	wildcardRE  = regexp.MustCompile(`^v?\d+(\.\d+)*\.\*$`)
	specifierRE = regexp.MustCompile(`(?i)^(~=|===|==|!=|<=|>=|<|>)\s*(` + pep440 + `|` + `v?(\d+!)?\d+(\.\d+)*\.\*` + `)$`)
)

// pipRequirement validates one pip entry and returns the requirement as
// pip reads it ("pandas==2.2.3"), or an error saying what is wrong.
func pipRequirement(name, version string) (string, error) {
	name = strings.TrimSpace(name)
	if !pipNameRE.MatchString(name) {
		return "", fmt.Errorf("invalid package name %q: names use letters, digits, '.', '_' and '-' (extras as name[extra])", name)
	}
	v := strings.TrimSpace(version)
	if v == "" || v == "*" {
		return name, nil
	}
	if versionRE.MatchString(v) || wildcardRE.MatchString(v) {
		return name + "==" + v, nil
	}
	var clauses []string
	for _, c := range strings.Split(v, ",") {
		c = strings.TrimSpace(c)
		m := specifierRE.FindStringSubmatch(c)
		if m == nil {
			return "", fmt.Errorf("invalid version %q for %s: use a version (2.2.3) or specifiers such as >=2.0,<3 or ==2.2.* (PEP 440)", version, name)
		}
		ver := m[2]
		if strings.HasSuffix(ver, ".*") && m[1] != "==" && m[1] != "!=" {
			return "", fmt.Errorf("invalid version %q for %s: a wildcard (.*) goes only with == or !=", version, name)
		}
		if m[1] == "~=" && !strings.Contains(ver, ".") {
			return "", fmt.Errorf("invalid version %q for %s: ~= needs at least two parts (~=2.2)", version, name)
		}
		clauses = append(clauses, m[1]+ver)
	}
	return name + strings.Join(clauses, ","), nil
}

// normalizePipName is the PEP 503 form of a package name (extras dropped).
func normalizePipName(name string) string {
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(strings.TrimSpace(name)) {
		if c == '-' || c == '_' || c == '.' {
			dash = true
			continue
		}
		if dash && b.Len() > 0 {
			b.WriteByte('-')
		}
		dash = false
		b.WriteRune(c)
	}
	return b.String()
}
