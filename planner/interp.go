package planner

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Supported Python versions of functions (and of the extractor).
const (
	MinPythonMinor = 9  // 3.9
	MaxPythonMinor = 13 // 3.13
)

// Interpreter is a Python interpreter found on this machine.
type Interpreter struct {
	// Version is "3.11.7" when known, else "3.11".
	Version string `json:"version"`
	// Minor is "3.11".
	Minor string `json:"minor"`
	// Path is the real interpreter binary (never a pyenv shim).
	Path string `json:"path"`
}

var pyNameRE = regexp.MustCompile(`^python(3\.\d+)$`)
var pyVersionDirRE = regexp.MustCompile(`^(3\.\d+)(\.\d+)?$`)

// FindInterpreters lists one Python 3 interpreter per minor version, newest
// first, preferring in this order: $LAKEHOUSE_PYTHON (a path),
// $PYENV_ROOT/versions (default ~/.pyenv; the newest patch release), and
// the pythonX.Y binaries of $PATH (skipping wrapper scripts such as pyenv
// shims). That is envcache's order too, so the plan names the interpreter
// a function will run with. It runs nothing: versions come from the names.
func FindInterpreters(getenv func(string) string) []Interpreter {
	var found []Interpreter
	seen := map[string]bool{}
	add := func(path, version string) {
		minor := minorOf(version)
		if minor == "" || seen[minor] || !isBinary(path) {
			return
		}
		seen[minor] = true
		found = append(found, Interpreter{Version: version, Minor: minor, Path: path})
	}
	if p := getenv("LAKEHOUSE_PYTHON"); p != "" {
		if m := pyNameRE.FindStringSubmatch(filepath.Base(p)); m != nil {
			add(p, m[1])
		} else if real, err := filepath.EvalSymlinks(p); err == nil {
			if m := pyNameRE.FindStringSubmatch(filepath.Base(real)); m != nil {
				add(p, m[1])
			}
		}
	}
	root := getenv("PYENV_ROOT")
	if root == "" {
		if home := getenv("HOME"); home != "" {
			root = filepath.Join(home, ".pyenv")
		}
	}
	if root != "" {
		dirs, _ := os.ReadDir(filepath.Join(root, "versions"))
		// Newest patch release first within a minor version.
		sort.Slice(dirs, func(i, j int) bool { return versionLess(dirs[j].Name(), dirs[i].Name()) })
		for _, d := range dirs {
			m := pyVersionDirRE.FindStringSubmatch(d.Name())
			if m == nil {
				continue
			}
			add(filepath.Join(root, "versions", d.Name(), "bin", "python"+m[1]), d.Name())
		}
	}
	for _, dir := range filepath.SplitList(getenv("PATH")) {
		if dir == "" || strings.Contains(dir, "shims") {
			continue
		}
		matches, _ := filepath.Glob(filepath.Join(dir, "python3.*"))
		sort.Strings(matches)
		for _, p := range matches {
			if m := pyNameRE.FindStringSubmatch(filepath.Base(p)); m != nil {
				add(p, m[1])
			}
		}
	}
	sort.Slice(found, func(i, j int) bool { return versionLess(found[j].Minor, found[i].Minor) })
	return found
}

// isBinary reports whether path is an executable file that is not a script
// (pyenv shims and wrappers start with "#!" and cost ~150 ms per start).
func isBinary(path string) bool {
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 2)
	n, _ := f.Read(head)
	return !bytes.Equal(head[:n], []byte("#!"))
}

// minorOf returns "3.11" for "3.11" or "3.11.7", "" for anything else.
func minorOf(v string) string {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "3" {
		return ""
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			return ""
		}
	}
	return parts[0] + "." + parts[1]
}

// minorNumber returns 11 for "3.11".
func minorNumber(minor string) int {
	_, m, _ := strings.Cut(minor, ".")
	n, _ := strconv.Atoi(m)
	return n
}

// versionLess compares dotted version strings numerically.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errx := strconv.Atoi(as[i])
		y, erry := strconv.Atoi(bs[i])
		if errx != nil || erry != nil {
			if as[i] != bs[i] {
				return as[i] < bs[i]
			}
			continue
		}
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// extractorInterpreter picks the interpreter that runs the extractor: the
// newest supported one.
func extractorInterpreter(found []Interpreter) (Interpreter, bool) {
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
	return Interpreter{}, false
}
