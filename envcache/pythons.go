package envcache

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Python is a CPython 3 interpreter known by its name alone: finding it
// runs nothing, so the planner names the binary a function will run with
// before anything starts. Running it tells the rest (Interpreter).
type Python struct {
	// Version is "3.11.7" when the name says so (a pyenv version folder),
	// else the minor version "3.11".
	Version string `json:"version"`
	// Minor is "3.11".
	Minor string `json:"minor"`
	// Path is the interpreter binary, symlinks resolved; never a pyenv
	// shim or another wrapper script.
	Path string `json:"path"`
}

// PythonSearch says where FindPythons looks.
type PythonSearch struct {
	// Getenv reads LAKEHOUSE_PYTHON, PYENV_ROOT, HOME and PATH; nil means
	// os.Getenv.
	Getenv func(string) string
	// Dirs are extra interpreter prefixes or bin folders (--python-dir).
	Dirs []string
}

var (
	pyNameRE       = regexp.MustCompile(`^python(3\.\d+)$`)
	pyVersionDirRE = regexp.MustCompile(`^(3\.\d+)(\.\d+)?$`)
)

// FindPythons lists the interpreters of this machine, preferring in this
// order:
//  1. $LAKEHOUSE_PYTHON, a binary named python3.X or a link to one;
//  2. python3.X in each of s.Dirs and its bin/ folder;
//  3. $PYENV_ROOT/versions/3.X.Y/bin/python3.X (default ~/.pyenv), the
//     newest patch release first;
//  4. python3.X in the folders of $PATH, skipping pyenv shims.
//
// Wrapper scripts (pyenv shims cost ~150 ms per start) are skipped, and so
// is a binary whose Version a preferred one already has: PythonFor could
// never pick it. The list is sorted by minor version, newest first, in the
// order above within a minor version. It runs nothing: versions come from
// the names.
func FindPythons(s PythonSearch) []Python {
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var found []Python
	seenPath, seenVersion := map[string]bool{}, map[string]bool{}
	add := func(path, version string) {
		minor := PythonMinor(version)
		if minor == "" || seenVersion[version] {
			return
		}
		real, err := filepath.EvalSymlinks(path)
		if err != nil || seenPath[real] || !isBinary(real) {
			return
		}
		seenPath[real], seenVersion[version] = true, true
		found = append(found, Python{Version: version, Minor: minor, Path: real})
	}
	glob := func(dir string) {
		ms, _ := filepath.Glob(filepath.Join(dir, "python3.*"))
		sort.Strings(ms)
		for _, p := range ms {
			if m := pyNameRE.FindStringSubmatch(filepath.Base(p)); m != nil {
				add(p, m[1])
			}
		}
	}
	if p := getenv("LAKEHOUSE_PYTHON"); p != "" {
		name := filepath.Base(p)
		if real, err := filepath.EvalSymlinks(p); err == nil && !pyNameRE.MatchString(name) {
			name = filepath.Base(real)
		}
		if m := pyNameRE.FindStringSubmatch(name); m != nil {
			add(p, m[1])
		}
	}
	for _, d := range s.Dirs {
		glob(filepath.Join(d, "bin"))
		glob(d)
	}
	root := getenv("PYENV_ROOT")
	if root == "" {
		if home := getenv("HOME"); home != "" {
			root = filepath.Join(home, ".pyenv")
		}
	}
	if root != "" {
		dirs, _ := os.ReadDir(filepath.Join(root, "versions"))
		sort.Slice(dirs, func(i, j int) bool { return versionLess(dirs[j].Name(), dirs[i].Name()) })
		for _, d := range dirs {
			if m := pyVersionDirRE.FindStringSubmatch(d.Name()); m != nil {
				add(filepath.Join(root, "versions", d.Name(), "bin", "python"+m[1]), d.Name())
			}
		}
	}
	for _, d := range filepath.SplitList(getenv("PATH")) {
		if d != "" && !strings.Contains(d, "shims") {
			glob(d)
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return versionLess(found[j].Minor, found[i].Minor) })
	return found
}

// PythonFor returns the interpreter that a function asking for version
// ("3.11" or "3.11.7") runs with: the first of pythons (in FindPythons'
// order) of that minor version; for a patch release, the first named for
// exactly that release, else the first whose name gives no patch release
// (running it tells whether it is the one). The planner names this binary
// in the plan and a Cache runs it, so the two never disagree.
func PythonFor(pythons []Python, version string) (Python, bool) {
	minor := PythonMinor(version)
	if minor == "" {
		return Python{}, false
	}
	if version != minor {
		for _, p := range pythons {
			if p.Version == version {
				return p, true
			}
		}
	}
	for _, p := range pythons {
		if p.Minor == minor && (version == minor || p.Version == minor) {
			return p, true
		}
	}
	return Python{}, false
}

// PythonMinor returns "3.11" for "3.11" or "3.11.7", "" for anything else.
func PythonMinor(version string) string {
	parts := strings.Split(version, ".")
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

// isBinary reports whether path is an executable file that is not a
// script (pyenv shims and other wrappers start with "#!").
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

// versionLess compares dotted versions numerically.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
