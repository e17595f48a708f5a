package planner

import (
	"strconv"
	"strings"

	"github.com/lakehouse-dev/lakehouse/envcache"
)

// Supported Python versions of functions (and of the extractor).
const (
	MinPythonMinor = 9  // 3.9
	MaxPythonMinor = 13 // 3.13
)

// The interpreters of the machine come from envcache.FindPythons (through
// Options.Interpreters), and envcache.PythonFor picks the one a version
// runs with: the environment cache runs the binary the plan names.

// minorNumber returns 11 for "3.11".
func minorNumber(minor string) int {
	_, m, _ := strings.Cut(minor, ".")
	n, _ := strconv.Atoi(m)
	return n
}

// extractorInterpreter picks the interpreter that runs the extractor: the
// newest supported one, else the newest one (newer than supported).
func extractorInterpreter(found []envcache.Python) (envcache.Python, bool) {
	for _, in := range found {
		if n := minorNumber(in.Minor); n >= MinPythonMinor && n <= MaxPythonMinor {
			return in, true
		}
	}
	for _, in := range found {
		if minorNumber(in.Minor) > MaxPythonMinor {
			return in, true
		}
	}
	return envcache.Python{}, false
}
