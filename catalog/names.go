package catalog

import (
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// MainBranch is the branch every catalog starts with. It takes writes only
// by merge.
const MainBranch BranchName = "main"

// DefaultNamespace exists on main from the first commit, so that a table
// named without a namespace has a home.
const DefaultNamespace Namespace = "default"

// MaxNameLen bounds every user-supplied name (branch, tag, namespace, table).
const MaxNameLen = 255

// BranchName names a branch: "main" or "<user>.<name>". Values of this type
// have been validated with ParseBranchName.
type BranchName string

// TagName names a tag. Values have been validated with ParseTagName.
type TagName string

// Namespace names a namespace (one level: "sales"). Validated by ParseNamespace.
type Namespace string

// TableIdent is a namespace-qualified table name. Validated by ParseTableIdent.
type TableIdent struct {
	Namespace Namespace
	Name      string
}

func (t TableIdent) String() string { return string(t.Namespace) + "." + t.Name }

// Less orders identifiers by namespace, then name.
func (t TableIdent) Less(o TableIdent) bool {
	if t.Namespace != o.Namespace {
		return t.Namespace < o.Namespace
	}
	return t.Name < o.Name
}

func (b BranchName) String() string { return string(b) }
func (t TagName) String() string    { return string(t) }
func (n Namespace) String() string  { return string(n) }

// isWordChar reports whether c may appear in an identifier segment.
func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// checkRefSegment validates one dot-free segment of a branch or tag name.
func checkRefSegment(s string) string {
	if s == "" {
		return "has an empty part (two dots in a row, or a leading or trailing dot)"
	}
	if s[0] == '-' {
		return "has a part starting with '-'"
	}
	for i := 0; i < len(s); i++ {
		if !isWordChar(s[i]) {
			return "contains " + quoteChar(s[i]) + "; use letters, digits, '_', '-' and '.' only"
		}
	}
	return ""
}

func quoteChar(c byte) string {
	switch c {
	case ' ':
		return "a space"
	case '/':
		return "'/'"
	case '@':
		return "'@' (which separates a ref from a commit)"
	}
	if c < 0x20 || c >= 0x7f {
		return "a non-printable or non-ASCII character"
	}
	return "'" + string(c) + "'"
}

const branchHint = "branch names are `main` or `<user>.<name>`, e.g. alice.dev"

// ParseBranchName validates a branch name: "main", or "<user>.<name>" where
// user is one segment and name is one or more dot-separated segments of
// letters, digits, '_' and '-'. It returns an ErrInvalidArgument error with a
// hint otherwise.
func ParseBranchName(s string) (BranchName, error) {
	if s == string(MainBranch) {
		return MainBranch, nil
	}
	if err := checkRefName("branch", s); err != nil {
		return "", err
	}
	if !strings.Contains(s, ".") {
		return "", errdefs.WithHint(errdefs.ErrInvalidArgument, branchHint,
			"invalid branch name %q: user branches are named `<user>.<name>`", s)
	}
	return BranchName(s), nil
}

// ParseTagName validates a tag name: one or more dot-separated segments of
// letters, digits, '_' and '-' (v1, v1.2, release-2026).
func ParseTagName(s string) (TagName, error) {
	if err := checkRefName("tag", s); err != nil {
		return "", err
	}
	return TagName(s), nil
}

func checkRefName(kind, s string) error {
	hint := branchHint
	if kind == "tag" {
		hint = "tag names use letters, digits, '_', '-' and '.', e.g. v1"
	}
	if s == "" {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "%s name is empty", kind)
	}
	if len(s) > MaxNameLen {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, hint,
			"%s name is %d characters long; the limit is %d", kind, len(s), MaxNameLen)
	}
	for _, seg := range strings.Split(s, ".") {
		if msg := checkRefSegment(seg); msg != "" {
			return errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "invalid %s name %q: it %s", kind, s, msg)
		}
	}
	return nil
}

// checkIdent validates a namespace or table name: a letter or '_' followed by
// letters, digits and '_' (so it needs no quoting in SQL).
func checkIdent(kind, s string) error {
	hint := kind + " names start with a letter or '_' and use letters, digits and '_', e.g. sales"
	if s == "" {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "%s name is empty", kind)
	}
	if len(s) > MaxNameLen {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, hint,
			"%s name is %d characters long; the limit is %d", kind, len(s), MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (i > 0 && c >= '0' && c <= '9')
		if !ok && i == 0 && c >= '0' && c <= '9' {
			return errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "invalid %s name %q: it starts with a digit", kind, s)
		}
		if !ok {
			return errdefs.WithHint(errdefs.ErrInvalidArgument, hint, "invalid %s name %q: it contains %s", kind, s, quoteChar(c))
		}
	}
	return nil
}

// ParseNamespace validates a namespace name.
func ParseNamespace(s string) (Namespace, error) {
	if err := checkIdent("namespace", s); err != nil {
		return "", err
	}
	return Namespace(s), nil
}

// ParseTableIdent parses "ns.table", or "table" in namespace def.
func ParseTableIdent(s string, def Namespace) (TableIdent, error) {
	ns, name := string(def), s
	if i := strings.IndexByte(s, '.'); i >= 0 {
		ns, name = s[:i], s[i+1:]
	}
	n, err := ParseNamespace(ns)
	if err != nil {
		return TableIdent{}, err
	}
	if err := checkIdent("table", name); err != nil {
		return TableIdent{}, err
	}
	return TableIdent{Namespace: n, Name: name}, nil
}
