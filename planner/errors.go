package planner

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/suggest"
)

// Diagnostic is one problem found in a project, at a file and line.
type Diagnostic struct {
	// File is relative to the project folder; "" for the command line.
	File string `json:"file,omitempty"`
	// Line is 1-based; 0 when the problem concerns the whole file.
	Line int    `json:"line,omitempty"`
	Msg  string `json:"message"`
}

func (d Diagnostic) String() string {
	switch {
	case d.File == "":
		return d.Msg
	case d.Line <= 0:
		return d.File + ": " + d.Msg
	default:
		return fmt.Sprintf("%s:%d: %s", d.File, d.Line, d.Msg)
	}
}

// diags collects diagnostics.
type diags []Diagnostic

func (ds *diags) add(file string, line int, format string, args ...any) {
	*ds = append(*ds, Diagnostic{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// PlanError reports every problem found while planning a project. It is of
// class errdefs.ErrInvalidArgument (exit code 2).
type PlanError struct {
	Project string
	// Dir is the project folder; messages name files under it.
	Dir         string
	Diagnostics []Diagnostic
	// Strict is set when the diagnostics are warnings that fail the plan
	// because of Options.Strict.
	Strict bool
}

func newPlanError(project string, ds []Diagnostic) *PlanError {
	ds = append([]Diagnostic(nil), ds...)
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			if a.File == "" || b.File == "" {
				return a.File == "" // command-line problems first
			}
			if (a.File == ConfigFile) != (b.File == ConfigFile) {
				return a.File == ConfigFile
			}
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Msg < b.Msg
	})
	out := ds[:0]
	for i, d := range ds {
		if i > 0 && d == ds[i-1] {
			continue
		}
		out = append(out, d)
	}
	return &PlanError{Project: project, Diagnostics: out}
}

func (e *PlanError) Error() string {
	var b strings.Builder
	n := len(e.Diagnostics)
	if e.Strict {
		fmt.Fprintf(&b, "pipeline %s has %d warning%s, which fail it with --strict; nothing ran", e.Project, n, plural(n))
	} else {
		fmt.Fprintf(&b, "pipeline %s has %d error%s; nothing ran", e.Project, n, plural(n))
	}
	for _, d := range e.Diagnostics {
		if d.File != "" && e.Dir != "" && e.Dir != "." {
			d.File = filepath.Join(e.Dir, d.File)
		}
		b.WriteString("\n  ")
		b.WriteString(d.String())
	}
	return b.String()
}

// Unwrap makes errors.Is(err, errdefs.ErrInvalidArgument) hold.
func (e *PlanError) Unwrap() error { return errdefs.ErrInvalidArgument }

// didYouMean returns ` (did you mean "x"?)` for the candidate closest to
// name, or "".
func didYouMean(name string, candidates []string) string {
	if s := suggest.Closest(name, candidates, 0); s != "" && s != name {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}
