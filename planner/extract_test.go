package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/lakehouse-dev/lakehouse/envcache"
)

// TestExtractorAcrossVersions runs the extractor with every supported
// Python on this machine over the golden and invalid projects: each must
// read the same models and report the same problems (syntax error texts
// aside, which differ between versions).
func TestExtractorAcrossVersions(t *testing.T) {
	var pythons []envcache.Python
	found := envcache.FindPythons(envcache.PythonSearch{})
	for n := MaxPythonMinor; n >= MinPythonMinor; n-- {
		if in, ok := envcache.PythonFor(found, fmt.Sprintf("3.%d", n)); ok {
			pythons = append(pythons, in)
		}
	}
	if len(pythons) < 2 {
		t.Skipf("only %d supported Python(s) here", len(pythons))
	}
	var dirs []string
	for _, pattern := range []string{"golden/*", "invalid/*"} {
		m, _ := filepath.Glob(filepath.Join("..", "testdata", "pipelines", pattern))
		dirs = append(dirs, m...)
	}
	// Every file of every project in one extractor run per interpreter.
	var files []string
	for _, dir := range dirs {
		if filepath.Base(dir) == "python_syntax" {
			continue
		}
		proj, _, err := LoadProject(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range proj.PyFiles {
			files = append(files, filepath.Join(dir, f))
		}
	}
	var first []byte
	for _, py := range pythons {
		x, err := Extract(context.Background(), py.Path, "", files)
		if err != nil {
			t.Fatalf("extract with %s: %v", py.Version, err)
		}
		b, _ := json.MarshalIndent(x.Files, "", " ")
		if first == nil {
			first = b
			continue
		}
		if string(b) != string(first) {
			t.Errorf("Python %s reads\n%s\nbut %s reads\n%s", py.Version, b, pythons[0].Version, first)
		}
	}
}
