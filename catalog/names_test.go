package catalog

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func TestParseBranchName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, err string // err: substring of the error, "" for valid
	}{
		{"main", ""},
		{"alice.dev", ""},
		{"alice.dev.v2", ""},
		{"a_b.c-d", ""},
		{"dev", "user branches are named `<user>.<name>`"},
		{"", "branch name is empty"},
		{"..", "empty part"},
		{"alice..dev", "empty part"},
		{".dev", "empty part"},
		{"alice.", "empty part"},
		{"alice/dev", "contains '/'"},
		{"alice.my dev", "contains a space"},
		{"alice.dev@x", "contains '@'"},
		{"alice.-x", "starting with '-'"},
		{"alice.dév", "non-printable or non-ASCII"},
		{"a." + strings.Repeat("x", 300), "the limit is 255"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			b, err := ParseBranchName(tc.in)
			if tc.err == "" {
				if err != nil || string(b) != tc.in {
					t.Fatalf("ParseBranchName(%q) = %q, %v", tc.in, b, err)
				}
				return
			}
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("ParseBranchName(%q) err = %v, want InvalidArgument containing %q", tc.in, err, tc.err)
			}
			if !strings.Contains(err.Error(), "e.g. alice.dev") {
				t.Fatalf("error has no hint: %v", err)
			}
		})
	}
}

func TestParseRef(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want Ref
		err  string
	}{
		{in: "main", want: Ref{Name: "main"}},
		{in: "v1", want: Ref{Name: "v1"}},
		{in: "alice.dev", want: Ref{Name: "alice.dev"}},
		{in: "main@3F9A1C2E", want: Ref{Name: "main", Commit: "3f9a1c2e"}},
		{in: "@3f9a1c2e0011", want: Ref{Commit: "3f9a1c2e0011"}},
		{in: "main@2026-11-21T10:00:00Z", want: Ref{Name: "main", Time: ts}},
		{in: "", err: "ref is empty"},
		{in: "main@", err: "nothing after '@'"},
		{in: "@", err: "nothing after '@'"},
		{in: "main@3f9a", err: "8 to 64 hex"},
		{in: "@" + strings.Repeat("a", 65), err: "8 to 64 hex"},
		{in: "@yesterday", err: "a detached ref is '@' followed by a commit hash"},
		{in: "main@yesterday", err: "neither a commit hash"},
		{in: "main@2026-13-01T00:00:00Z", err: "neither a commit hash"},
		{in: "a b", err: "contains a space"},
		{in: "x@y@z", err: "neither a commit hash"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRef(tc.in)
			if tc.err != "" {
				if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseRef(%q) err = %v, want %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || r.Name != tc.want.Name || r.Commit != tc.want.Commit || !r.Time.Equal(tc.want.Time) {
				t.Fatalf("ParseRef(%q) = %+v, %v; want %+v", tc.in, r, err, tc.want)
			}
		})
	}
}

func TestParseTableIdent(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want, err string }{
		{"sales.transactions", "sales.transactions", ""},
		{"transactions", "default.transactions", ""},
		{"_x._y1", "_x._y1", ""},
		{"sales.", "", "table name is empty"},
		{".t", "", "namespace name is empty"},
		{"1sales.t", "", "starts with a digit"},
		{"sales.t-1", "", "contains '-'"},
		{"a.b.c", "", "contains '.'"},
		{"sales.my table", "", "contains a space"},
	}
	for _, tc := range cases {
		id, err := ParseTableIdent(tc.in, DefaultNamespace)
		if tc.err != "" {
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTableIdent(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || id.String() != tc.want {
			t.Errorf("ParseTableIdent(%q) = %v, %v", tc.in, id, err)
		}
	}
}

// FuzzParseRef checks that ref parsing never panics, that every accepted
// ref round-trips through String, and that errors are InvalidArgument.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"main", "alice.dev", "main@3f9a1c2e", "@3f9a1c2e", "v1",
		"main@2026-11-21T10:00:00Z", "main@", "@", "..", "a/b", "a b", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("ParseRef(%q): error of class %v: %v", s, errdefs.Class(err), err)
			}
			return
		}
		r2, err := ParseRef(r.String())
		if err != nil || r2.Name != r.Name || r2.Commit != r.Commit || !r2.Time.Equal(r.Time) {
			t.Fatalf("ParseRef(%q) = %+v does not round-trip via %q: %+v, %v", s, r, r.String(), r2, err)
		}
	})
}

// FuzzNames checks branch, tag, namespace and table name validation: no
// panic, InvalidArgument on rejection, and accepted names are printable
// ASCII without '/', '@', spaces or "..".
func FuzzNames(f *testing.F) {
	for _, s := range []string{"main", "alice.dev", "..", "a/b", "has space", "v1.0", "sales.t", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(kind string, ok string, err error) {
			if err != nil {
				if !errdefs.Is(err, errdefs.ErrInvalidArgument) || !utf8.ValidString(err.Error()) && utf8.ValidString(s) {
					t.Fatalf("%s %q: bad error %v", kind, s, err)
				}
				return
			}
			if len(ok) > 2*MaxNameLen+1 || strings.ContainsAny(ok, "/@ \t\n") || strings.Contains(ok, "..") {
				t.Fatalf("%s %q accepted but unsafe", kind, ok)
			}
			for i := 0; i < len(ok); i++ {
				if ok[i] < 0x21 || ok[i] > 0x7e {
					t.Fatalf("%s %q accepted with a non-printable byte", kind, ok)
				}
			}
		}
		b, err := ParseBranchName(s)
		check("branch", string(b), err)
		tg, err := ParseTagName(s)
		check("tag", string(tg), err)
		ns, err := ParseNamespace(s)
		check("namespace", string(ns), err)
		id, err := ParseTableIdent(s, DefaultNamespace)
		if err == nil {
			check("table", id.String(), nil)
		} else {
			check("table", "", err)
		}
	})
}
