package planner

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// fuseModel is a Python model reading from (a table or model input, as
// written in Python) with the decorators given.
func fuseModel(name, from string, decorators ...string) string {
	if len(decorators) == 0 {
		decorators = []string{`@lakehouse.model()`}
	}
	return fmt.Sprintf("\n%s\ndef %s(data=%s):\n    return data\n", strings.Join(decorators, "\n"), name, from)
}

func TestFuse(t *testing.T) {
	t.Parallel()
	tx := `lakehouse.Model("transactions")`
	in := func(m string) string { return `lakehouse.Model("` + m + `")` }
	cases := []struct {
		name   string
		models []string
		want   [][]string
	}{
		{"chain", []string{
			fuseModel("a", tx),
			fuseModel("b", in("a")),
			fuseModel("c", in("b"), `@lakehouse.model(materialization="REPLACE")`),
			fuseModel("c_ok", in("c"), `@lakehouse.expectation()`),
		}, [][]string{{"a", "b", "c"}}},
		{"two chains", []string{
			fuseModel("a", tx),
			fuseModel("b", in("a"), `@lakehouse.model(materialization="REPLACE")`),
			fuseModel("c", in("b")),
			fuseModel("d", in("c")),
		}, [][]string{{"a", "b"}, {"c", "d"}}},
		{"materialized on the way", []string{
			fuseModel("a", tx, `@lakehouse.model(materialization="REPLACE")`),
			fuseModel("b", in("a")),
		}, [][]string{}},
		{"two readers", []string{
			fuseModel("a", tx),
			fuseModel("b", in("a")),
			fuseModel("c", in("a")),
		}, [][]string{}},
		{"reads two models", []string{
			fuseModel("a", tx),
			fuseModel("b", tx),
			"\n@lakehouse.model()\ndef c(x=lakehouse.Model(\"a\"), y=lakehouse.Model(\"b\")):\n    return x\n",
		}, [][]string{}},
		{"reads a model and a table", []string{
			fuseModel("a", tx),
			"\n@lakehouse.model()\ndef b(x=lakehouse.Model(\"a\"), y=lakehouse.Model(\"customers\")):\n    return x\n",
		}, [][]string{{"a", "b"}}},
		{"other python", []string{
			fuseModel("a", tx),
			fuseModel("b", in("a"), `@lakehouse.model()`, `@lakehouse.python("3.10")`),
		}, [][]string{}},
		{"other requirements", []string{
			fuseModel("a", tx),
			fuseModel("b", in("a"), `@lakehouse.model()`, `@lakehouse.python("3.11", pip={"pandas": "2.2.3"})`),
		}, [][]string{}},
		{"filter on the way", []string{
			fuseModel("a", tx),
			fuseModel("b", `lakehouse.Model("a", filter="id > 10")`),
		}, [][]string{}},
		{"memory limit", []string{
			fuseModel("a", tx),
			fuseModel("b", in("a"), `@lakehouse.model()`, `@lakehouse.resources(memory="1GiB")`),
		}, [][]string{}},
		{"internet access differs", []string{
			fuseModel("a", tx),
			fuseModel("b", in("a"), `@lakehouse.model(internet_access=True)`),
		}, [][]string{}},
		{"expectation", []string{
			fuseModel("a", tx),
			fuseModel("a_ok", in("a"), `@lakehouse.expectation()`),
		}, [][]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := "import lakehouse\n" + strings.Join(tc.models, "")
			p, err := planDir(t, map[string]string{"models.py": src}, nil)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if !reflect.DeepEqual(p.Chains, tc.want) {
				t.Errorf("chains %v, want %v", p.Chains, tc.want)
			}
		})
	}
}

// TestNoFuse: with Options.NoFuse the plan has no chains and says so.
func TestNoFuse(t *testing.T) {
	t.Parallel()
	src := "import lakehouse\n" + fuseModel("a", `lakehouse.Model("transactions")`) + fuseModel("b", `lakehouse.Model("a")`,
		`@lakehouse.model(materialization="REPLACE")`)
	for _, noFuse := range []bool{false, true} {
		t.Run(fmt.Sprint("NoFuse=", noFuse), func(t *testing.T) {
			t.Parallel()
			p, err := planDir(t, map[string]string{"models.py": src}, func(o *Options) { o.NoFuse = noFuse })
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			var js, tree bytes.Buffer
			if err := p.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			if err := p.WriteTree(&tree); err != nil {
				t.Fatal(err)
			}
			fused := "fused: a → b run in one interpreter, each table handed to the next in memory (--no-fuse runs them apart)\n"
			if noFuse {
				if len(p.Chains) != 0 || !p.NoFuse || strings.Contains(tree.String(), "fused:") ||
					!strings.Contains(js.String(), `"chains": [],`) || !strings.Contains(js.String(), `"no_fuse": true`) {
					t.Errorf("chains %v no_fuse %v\n%s%s", p.Chains, p.NoFuse, tree.String(), js.String())
				}
				return
			}
			if !reflect.DeepEqual(p.Chains, [][]string{{"a", "b"}}) || p.NoFuse || !strings.HasSuffix(tree.String(), fused) ||
				strings.Contains(js.String(), "no_fuse") {
				t.Errorf("chains %v no_fuse %v\n%s%s", p.Chains, p.NoFuse, tree.String(), js.String())
			}
		})
	}
}

func TestPythonEnvKey(t *testing.T) {
	t.Parallel()
	key := func(v string, reqs ...string) string { return (&PythonEnv{Version: v, Requirements: reqs}).Key() }
	if key("3.11", "pandas==2.2.3", "pyarrow") != key("3.11", "pyarrow", "pandas==2.2.3") {
		t.Error("the key depends on the order of requirements")
	}
	for _, other := range []string{key("3.10", "pandas==2.2.3", "pyarrow"), key("3.11", "pyarrow"), key("3.11", "pandas==2.2.2", "pyarrow")} {
		if other == key("3.11", "pandas==2.2.3", "pyarrow") {
			t.Errorf("different environments share the key %q", other)
		}
	}
}
