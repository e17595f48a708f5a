package planner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
)

// writeBigProject writes a project of n models into dir: Python files of
// ten models each (a chain per file, fanning in every tenth model) and one
// SQL model per ten, with parameters, pip pins and column lists.
func writeBigProject(tb testing.TB, dir string, n int) {
	tb.Helper()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	write(ConfigFile, `project:
  name: big
defaults:
  python: "3.11"
  namespace: sales
  pip: {pandas: "2.2.3"}
parameters:
  min_usd: {type: float, default: 1}
  country: {type: str, default: IT}
`)
	var py strings.Builder
	file := 0
	flush := func() {
		if py.Len() > 0 {
			write(fmt.Sprintf("models_%02d.py", file), "import lakehouse\n\n"+py.String())
			py.Reset()
			file++
		}
	}
	for i := 0; i < n; i++ {
		if i%10 == 9 {
			// A SQL model joining the previous model with a table.
			write(fmt.Sprintf("m%03d.sql", i), fmt.Sprintf(`-- lakehouse: materialization=REPLACE columns=id,usd,country
SELECT a.id, a.usd, a.country
FROM m%03d AS a
JOIN sales.customers AS c ON a.customer = c.customer
WHERE a.country = $country AND a.usd > $min_usd
`, i-1))
			flush()
			continue
		}
		input := fmt.Sprintf(`lakehouse.Model("transactions", columns=["id", "usd", "country", "customer"], filter="usd > 0")`)
		if i%10 != 0 {
			input = fmt.Sprintf(`lakehouse.Model("m%03d", columns=["id", "usd", "country", "customer"])`, i-1)
		} else if i > 0 {
			input = fmt.Sprintf(`lakehouse.Model("m%03d", columns=["id", "usd"])`, i-1)
		}
		mat := "NONE"
		if i%5 == 4 {
			mat = "APPEND"
		}
		fmt.Fprintf(&py, `
@lakehouse.model(materialization=%q, columns=["id", "usd", "country", "customer"])
@lakehouse.python("3.%d", pip={"polars": ">=1.0,<2", "numpy": "1.26.%d"})
@lakehouse.resources(cpus=1, memory="2GB", timeout=300)
def m%03d(
    data=%s,
    min_usd=lakehouse.Parameter("min_usd"),
):
    df = data.to_pandas()
    return df[df.usd >= min_usd]
`, mat, 10+i%4, i%5, i, input)
	}
	flush()
}

// BenchmarkPlan100 measures planning a 100-model project: "extract" is the
// one Python process that parses every file, "plan" everything else (load,
// SQL inputs, resolution against the catalog, validation, physical plan).
//
//	go test ./planner -run '^$' -bench Plan100 -benchtime 20x
func BenchmarkPlan100(b *testing.B) {
	dir := b.TempDir()
	writeBigProject(b, dir, 100)
	proj, ds, err := LoadProject(dir)
	if err != nil || len(ds) > 0 {
		b.Fatal(err, ds)
	}
	py := realPython(b)
	ctx := context.Background()
	b.Run("extract", func(b *testing.B) {
		for b.Loop() {
			if _, err := Extract(ctx, py, dir, proj.PyFiles); err != nil {
				b.Fatal(err)
			}
		}
	})
	x, err := Extract(ctx, py, dir, proj.PyFiles)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("plan", func(b *testing.B) {
		for b.Loop() {
			plan, err := Build(ctx, Options{Dir: dir, Ref: catalog.Ref{Name: "main"}, Catalog: newFakeCatalog(),
				SQL: fakeSQL{}, Interpreters: testInterpreters, Extraction: x})
			if err != nil {
				b.Fatal(err)
			}
			if len(plan.Models) != 100 {
				b.Fatalf("%d models", len(plan.Models))
			}
		}
	})
}

// TestPlan100 checks the 100-model project plans, in order, within the
// budget of 100 ms beyond the extractor (generously, so slow CI machines
// and -race pass; the benchmark gives the real figure).
func TestPlan100(t *testing.T) {
	dir := t.TempDir()
	writeBigProject(t, dir, 100)
	plan, err := Build(context.Background(), Options{Dir: dir, Ref: catalog.Ref{Name: "main"}, Catalog: newFakeCatalog(),
		SQL: fakeSQL{}, Interpreters: testInterpreters, Extractor: realPython(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Models) != 100 {
		t.Fatalf("%d models", len(plan.Models))
	}
	pos := map[string]int{}
	for i, n := range plan.Models {
		pos[n.Name] = i
	}
	for _, n := range plan.Models {
		for _, up := range n.Upstream {
			if pos[up] >= pos[n.Name] {
				t.Errorf("%s comes before its input %s", n.Name, up)
			}
		}
	}
	// The tree shows each model once, and deep chains do not drift right.
	var tree strings.Builder
	if err := plan.WriteTree(&tree); err != nil {
		t.Fatal(err)
	}
	for _, n := range plan.Models {
		if c := strings.Count(tree.String(), "── "+n.Name+"  "); c != 1 {
			t.Errorf("%s appears %d times in the tree", n.Name, c)
		}
	}
	for _, l := range strings.Split(tree.String(), "\n") {
		if indent := len([]rune(l)) - len([]rune(strings.TrimLeft(l, "│├└─ "))); indent > 4*(maxTreeDepth+1) {
			t.Errorf("line indented by %d: %s", indent, l)
		}
	}
	if plan.Timings.Plan > 500e6 {
		t.Errorf("planning took %v beyond the extractor (%v)", plan.Timings.Plan, plan.Timings.Extract)
	}
	t.Logf("extract %v, plan %v", plan.Timings.Extract, plan.Timings.Plan)
}

// TestWriteBenchProject writes the 100-model project to
// $LAKEHOUSE_BENCH_PROJECT (skipped when unset), to time the whole command:
//
//	LAKEHOUSE_BENCH_PROJECT=/tmp/big go test ./planner -run TestWriteBenchProject
//	time lakehouse run --dry-run -p /tmp/big   (needs sales.transactions and sales.customers)
func TestWriteBenchProject(t *testing.T) {
	dir := os.Getenv("LAKEHOUSE_BENCH_PROJECT")
	if dir == "" {
		t.Skip("LAKEHOUSE_BENCH_PROJECT is not set")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeBigProject(t, dir, 100)
}
