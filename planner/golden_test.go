package planner

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
)

var update = flag.Bool("update", false, "rewrite expected plans in testdata/pipelines/golden")

// realPython is the extractor interpreter of this machine.
func realPython(t testing.TB) string {
	t.Helper()
	in, ok := extractorInterpreter(envcache.FindPythons(envcache.PythonSearch{}))
	if !ok {
		t.Fatal("no Python 3.9+ on this machine; install one or set LAKEHOUSE_PYTHON")
	}
	return in.Path
}

// goldenOptions reads golden.args in a project: lines "param k=v",
// "ref REF", "namespace NS".
func goldenOptions(t *testing.T, dir string) Options {
	opts := Options{Dir: dir, Ref: catalog.Ref{Name: "main"}, Catalog: newFakeCatalog(), SQL: fakeSQL{},
		Interpreters: testInterpreters, Extractor: realPython(t)}
	b, err := os.ReadFile(filepath.Join(dir, "golden.args"))
	if os.IsNotExist(err) {
		return opts
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		switch k {
		case "param":
			opts.Params = append(opts.Params, v)
		case "ref":
			opts.Ref, err = catalog.ParseRef(v)
			if err != nil {
				t.Fatal(err)
			}
		case "namespace":
			opts.Namespace = catalog.Namespace(v)
		case "", "#":
		default:
			t.Fatalf("%s/golden.args: unknown line %q", dir, l)
		}
	}
	return opts
}

// TestGoldenPlans plans every project under testdata/pipelines/golden and
// compares plan.json (the JSON form) and plan.txt (the tree). Regenerate
// with `go test ./planner -run TestGoldenPlans -update`.
func TestGoldenPlans(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "testdata", "pipelines", "golden", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden projects: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			plan, err := Build(context.Background(), goldenOptions(t, dir))
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			var js bytes.Buffer
			if err := plan.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var tree bytes.Buffer
			if err := plan.WriteTree(&tree); err != nil {
				t.Fatal(err)
			}
			compareGolden(t, filepath.Join(dir, "plan.json"), js.Bytes())
			compareGolden(t, filepath.Join(dir, "plan.txt"), tree.Bytes())
		})
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs (rerun with -update to accept):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
