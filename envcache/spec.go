package envcache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Spec is what a function asks for: a Python version and pip requirements.
type Spec struct {
	// Python is a version prefix: "3.11" or "3.11.7".
	Python string `json:"python"`
	// Requirements are pip requirement strings: "pandas==2.2.3", "six",
	// "numpy<2". Order does not matter.
	Requirements []string `json:"requirements"`
}

var pythonVersionRE = regexp.MustCompile(`^3\.[0-9]{1,2}(\.[0-9]{1,2})?$`)

// reqNameRE matches the distribution name at the start of a requirement.
var reqNameRE = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)`)

// Validate checks the spec's shape (the resolver checks the rest). It returns
// an error of class ErrInvalidArgument.
func (s Spec) Validate() error {
	if !pythonVersionRE.MatchString(s.Python) {
		return errdefs.New(errdefs.ErrInvalidArgument, "invalid Python version %q: use 3.X or 3.X.Y, e.g. 3.11", s.Python)
	}
	for _, r := range s.Requirements {
		r = strings.TrimSpace(r)
		if r == "" || strings.HasPrefix(r, "-") || strings.ContainsAny(r, "\n\r") {
			return errdefs.New(errdefs.ErrInvalidArgument, "invalid pip requirement %q", r)
		}
		if !reqNameRE.MatchString(r) {
			return errdefs.New(errdefs.ErrInvalidArgument, "invalid pip requirement %q: it must start with a package name", r)
		}
	}
	return nil
}

// normalizeName is PEP 503 normalization: runs of -_. become -, lower case.
func normalizeName(n string) string {
	return strings.ToLower(regexp.MustCompile(`[-_.]+`).ReplaceAllString(n, "-"))
}

// withRunner returns the spec's requirements, trimmed and sorted, with the
// runner's requirements (pyarrow) added unless the spec already names them.
func (s Spec) withRunner(runner []string) []string {
	var out []string
	named := map[string]bool{}
	for _, r := range s.Requirements {
		r = strings.TrimSpace(r)
		named[normalizeName(reqNameRE.FindString(r))] = true
		out = append(out, r)
	}
	for _, r := range runner {
		if !named[normalizeName(reqNameRE.FindString(r))] {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// hashJSON is the hex sha256 of v's JSON encoding.
func hashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
