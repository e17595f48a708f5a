// Package repodir finds the repository's folders for tests and the tools
// they build, from the working directory rather than from the source file
// paths compiled into the binary: those are module paths, not folders,
// under -trimpath (which scripts/test.sh sets, so that the build cache
// serves a clone at any path).
package repodir

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Module is the module path of the repository.
const Module = "github.com/lakehouse-dev/lakehouse"

// Root is the repository's root: the nearest folder at or above the
// working directory (a package's folder, under go test) whose go.mod
// declares Module.
func Root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if declares(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod of %s at or above %s: run from inside the repository", Module, wd)
		}
	}
}

// Path is Root joined with a slash-separated path inside the repository.
// It panics outside the repository: its callers are test helpers, whose
// tests cannot run there.
func Path(rel string) string {
	root, err := Root()
	if err != nil {
		panic(err)
	}
	return filepath.Join(root, filepath.FromSlash(rel))
}

// declares reports whether the go.mod at path declares Module.
func declares(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.Trim(strings.TrimSpace(strings.TrimPrefix(line, "module")), `"`) == Module
		}
	}
	return false
}
