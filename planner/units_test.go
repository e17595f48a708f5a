package planner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func TestPipRequirement(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, version, want, err string
	}{
		{"pandas", "2.2.3", "pandas==2.2.3", ""},
		{"pandas", "", "pandas", ""},
		{"pandas", "*", "pandas", ""},
		{"pandas", ">=2.0,<3", "pandas>=2.0,<3", ""},
		{"pandas", ">= 2.0, < 3", "pandas>=2.0,<3", ""},
		{"pandas", "==2.2.*", "pandas==2.2.*", ""},
		{"pandas", "2.2.*", "pandas==2.2.*", ""},
		{"numpy", "~=1.26", "numpy~=1.26", ""},
		{"numpy", "1.26.0rc1", "numpy==1.26.0rc1", ""},
		{"numpy", "1!2.0.post1.dev3", "numpy==1!2.0.post1.dev3", ""},
		{"torch", "2.3.0+cpu", "torch==2.3.0+cpu", ""},
		{"polars[pyarrow,pandas]", "1.9", "polars[pyarrow,pandas]==1.9", ""},
		{"scikit-learn", "1.5", "scikit-learn==1.5", ""},
		{"zope.interface", "", "zope.interface", ""},
		{"scikit learn", "1.5", "", "invalid package name"},
		{"-pandas", "1", "", "invalid package name"},
		{"pandas", "two", "", "invalid version"},
		{"pandas", ">=1,<<2", "", "invalid version"},
		{"pandas", ">=2.*", "", "wildcard"},
		{"pandas", "~=2", "", "two parts"},
		{"pandas", "2.2.3; os_name=='nt'", "", "invalid version"},
	}
	for _, tc := range cases {
		got, err := pipRequirement(tc.name, tc.version)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("pipRequirement(%q, %q) = %q, %v; want error with %q", tc.name, tc.version, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("pipRequirement(%q, %q) = %q, %v; want %q", tc.name, tc.version, got, err, tc.want)
		}
	}
	if n := normalizePipName("Scikit_Learn[extra]"); n != "scikit-learn" {
		t.Errorf("normalizePipName = %q", n)
	}
}

func TestParamTypes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ  ParamType
		in   string
		want any
		ok   bool
	}{
		{ParamInt, "42", int64(42), true},
		{ParamInt, "1_000", int64(1000), true},
		{ParamInt, "4.2", nil, false},
		{ParamFloat, "4.2", 4.2, true},
		{ParamFloat, "7", 7.0, true},
		{ParamFloat, "NaN", nil, false},
		{ParamFloat, "inf", nil, false},
		{ParamBool, "true", true, true},
		{ParamBool, "No", false, true},
		{ParamBool, "maybe", nil, false},
		{ParamStr, "a=b", "a=b", true},
	}
	for _, tc := range cases {
		got, err := tc.typ.Parse(tc.in)
		if (err == nil) != tc.ok || tc.ok && got != tc.want {
			t.Errorf("%s.Parse(%q) = %v, %v", tc.typ, tc.in, got, err)
		}
	}
	for v, want := range map[any]string{nil: "NULL", true: "TRUE", int64(3): "3", 2.0: "2.0", 0.5: "0.5", "it's": "'it''s'"} {
		if got := sqlLiteral(v); got != want {
			t.Errorf("sqlLiteral(%v) = %s, want %s", v, got, want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, ds := ParseConfig([]byte(`project:
  name: euro
defaults:
  python: 3.10
  namespace: sales
  pip:
    pandas: "2.2.3"
    requests:
parameters:
  n: {type: int, default: 3}
  s: {type: str, default: "7"}
  b: {type: bool, default: yes, required: true, description: flag}
`))
	if len(ds) > 0 {
		t.Fatalf("diagnostics: %v", ds)
	}
	if cfg.Name != "euro" || cfg.Defaults.Python != "3.10" || cfg.Defaults.Namespace != "sales" {
		t.Errorf("config = %+v", cfg)
	}
	if !reflect.DeepEqual(cfg.Defaults.Pip, map[string]string{"pandas": "2.2.3", "requests": ""}) {
		t.Errorf("pip = %v", cfg.Defaults.Pip)
	}
	if len(cfg.Params) != 3 || cfg.Params[0].Default != int64(3) || cfg.Params[1].Default != "7" || cfg.Params[2].Default != true || !cfg.Params[2].Required {
		t.Errorf("params = %+v %+v %+v", cfg.Params[0], cfg.Params[1], cfg.Params[2])
	}

	_, ds = ParseConfig([]byte("project:\n  name: 1abc\nparameters:\n  x: {default: 1}\n  s: {type: str, default: 3}\nextra: 1\n"))
	var got []string
	for _, d := range ds {
		got = append(got, d.String())
	}
	want := []string{
		`lakehouse.yml:2: project.name "1abc": use letters, digits and '_', starting with a letter or '_'`,
		`lakehouse.yml:4: parameter x has no type; add type: int, float, str or bool`,
		`lakehouse.yml:5: parameter s: default 3 is not a str; quote it`,
		`lakehouse.yml:6: unknown key "extra"; known keys here: project, defaults, parameters`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSQLHeaderAndSubstitution(t *testing.T) {
	t.Parallel()
	src := "-- a comment\n-- lakehouse: materialization=replace partitioned_by=country,bucket(4,id)\n" +
		"-- lakehouse: overwrite_filter=\"ts > '2026-01-01'\" cache=false columns=a,b\n" +
		"SELECT $country AS c, '$country' AS lit, \"$country\" AS q, $1 -- $country\nFROM t /* $country */ WHERE x > $min\n"
	var ds diags
	m := decodeSQLModel("daily.sql", src, &ds)
	if len(ds) > 0 {
		t.Fatalf("diagnostics: %v", ds)
	}
	if m.Name != "daily" || m.Materialization != MatReplace || m.Cache || m.OverwriteFilter != "ts > '2026-01-01'" ||
		!reflect.DeepEqual(m.PartitionedBy, []string{"country", "bucket(4,id)"}) || !reflect.DeepEqual(m.Columns, []string{"a", "b"}) {
		t.Errorf("model = %+v", m)
	}
	params := map[string]ParamValue{"country": {Name: "country", Type: ParamStr, Value: "IT"}}
	substituteParams(m, params, []string{"country"}, &ds)
	wantSQL := strings.Replace(src, "SELECT $country", "SELECT 'IT'", 1)
	if m.SQL != wantSQL {
		t.Errorf("substituted SQL:\n%s\nwant:\n%s", m.SQL, wantSQL)
	}
	if len(ds) != 1 || ds[0].Line != 5 || !strings.Contains(ds[0].Msg, "$min: unknown parameter") {
		t.Errorf("diagnostics = %v", ds)
	}
}

func TestExtractorInterpreter(t *testing.T) {
	t.Parallel()
	py := func(v string) envcache.Python {
		minor := envcache.PythonMinor(v)
		return envcache.Python{Version: v, Minor: minor, Path: "/usr/bin/python" + minor}
	}
	for _, tc := range []struct {
		name  string
		found []envcache.Python
		want  string // "" for none
	}{
		{"newest supported", []envcache.Python{py("3.12.4"), py("3.11"), py("3.8.18")}, "3.12.4"},
		{"past the newest supported", []envcache.Python{py("3.15"), py("3.14"), py("3.12")}, "3.12"},
		{"only newer", []envcache.Python{py("3.15"), py("3.14")}, "3.15"},
		{"only older", []envcache.Python{py("3.8.18")}, ""},
		{"none", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, ok := extractorInterpreter(tc.found)
			if ok != (tc.want != "") || in.Version != tc.want {
				t.Errorf("extractor interpreter = %+v, %v; want %q", in, ok, tc.want)
			}
		})
	}
}

// planDir writes files into a new project folder and plans it with the
// fake catalog and parser.
func planDir(t *testing.T, files map[string]string, mod func(*Options)) (*Plan, error) {
	t.Helper()
	dir := t.TempDir()
	if _, ok := files[ConfigFile]; !ok {
		files[ConfigFile] = "project:\n  name: t\ndefaults:\n  python: \"3.11\"\n  namespace: sales\n"
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{Dir: dir, Ref: catalog.Ref{Name: "main"}, Catalog: newFakeCatalog(), SQL: fakeSQL{},
		Interpreters: testInterpreters, Extractor: realPython(t)}
	if mod != nil {
		mod(&opts)
	}
	return Build(context.Background(), opts)
}

// diagnostics returns the messages of a *PlanError as file:line: msg.
func diagnostics(t *testing.T, err error) []string {
	t.Helper()
	var pe *PlanError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *PlanError", err)
	}
	if !errdefs.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("plan error is not ErrInvalidArgument")
	}
	var out []string
	for _, d := range pe.Diagnostics {
		out = append(out, d.String())
	}
	return out
}

func TestPlanErrors(t *testing.T) {
	t.Parallel()
	const head = "import lakehouse\n\n"
	cases := []struct {
		name  string
		files map[string]string
		mod   func(*Options)
		want  []string
	}{
		{
			name:  "no models",
			files: map[string]string{"util.py": "def helper():\n    return 1\n"},
			want:  []string{"no models in "},
		},
		{
			name:  "reads itself",
			files: map[string]string{"m.py": head + "@lakehouse.model()\ndef loop(x=lakehouse.Model(\"loop\")):\n    return x\n"},
			want:  []string{"m.py:4: model loop reads itself"},
		},
		{
			name:  "shadow qualified",
			files: map[string]string{"customers.sql": "SELECT * FROM sales.customers"},
			want:  []string{"customers.sql:1: model customers shadows the catalog table sales.customers"},
		},
		{
			name:  "missing namespace",
			files: map[string]string{"m.py": head + "@lakehouse.model(materialization=\"REPLACE\", namespace=\"gold\")\ndef out(x=lakehouse.Model(\"transactions\")):\n    return x\n"},
			want:  []string{"m.py:3: out writes gold.out but namespace gold does not exist at main; create it with `lakehouse namespace create gold`"},
		},
		{
			name: "no python version",
			files: map[string]string{
				ConfigFile: "project:\n  name: t\n",
				"m.py":     head + "@lakehouse.model()\ndef out(x=lakehouse.Model(\"sales.transactions\")):\n    return x\n",
			},
			want: []string{`m.py:4: out has no Python version: add @lakehouse.python("3.11") or set defaults: python: in lakehouse.yml`},
		},
		{
			name:  "async model",
			files: map[string]string{"m.py": head + "@lakehouse.model()\nasync def out(x=lakehouse.Model(\"transactions\")):\n    return x\n"},
			want:  []string{"m.py:4: model out is an async function"},
		},
		{
			name:  "no sql parser",
			files: map[string]string{"a.sql": "SELECT 1"},
			mod:   func(o *Options) { o.SQL = nil },
			want:  []string{"a.sql: SQL models need DuckDB's SQL parser"},
		},
		{
			name:  "ref input unknown ref",
			files: map[string]string{"m.py": head + "@lakehouse.model()\ndef out(x=lakehouse.Model(\"transactions\", ref=\"v9\")):\n    return x\n"},
			want:  []string{`m.py:4: ref "v9" of input transactions: no branch or tag named "v9"`},
		},
		{
			name: "qualified name of an in-memory model",
			files: map[string]string{
				"m.py":  head + "@lakehouse.model()\ndef mem(x=lakehouse.Model(\"transactions\")):\n    return x\n",
				"b.sql": "-- lakehouse: materialization=REPLACE\nSELECT * FROM sales.mem",
			},
			want: []string{`b.sql:2: unknown table sales.mem at main; model mem is not written to a table (materialization NONE): read it by name, "mem"`},
		},
		{
			name: "expectations",
			files: map[string]string{"m.py": head + "@lakehouse.expectation()\ndef e():\n    return True\n\n" +
				"@lakehouse.expectation()\ndef f(x=lakehouse.Model(\"transactions\")):\n    return True\n\n" +
				"@lakehouse.model()\ndef g(x=lakehouse.Model(\"f\")):\n    return x\n"},
			want: []string{
				"m.py:4: expectation e reads nothing",
				"m.py:12: f is an expectation, whose result is a check, not a table; read the model it checks",
			},
		},
		{
			name: "partition column",
			files: map[string]string{"m.py": "from lakehouse import *\n\n" +
				"@model(materialization=\"REPLACE\", columns=[\"ts\", \"usd\"], partitioned_by=[\"day(ts)\", \"bucket(4, cntry)\"])\ndef g(x=Model(\"transactions\")):\n    return x\n"},
			want: []string{`m.py:3: g: partitioned_by bucket(4, cntry): column "cntry" is not among its output columns (ts, usd)`},
		},
		{
			name:  "empty sql",
			files: map[string]string{"a.sql": "-- lakehouse: materialization=NONE\n"},
			want:  []string{"a.sql: the file has no SQL"},
		},
		{
			name:  "expectation and model",
			files: map[string]string{"m.py": head + "@lakehouse.model()\n@lakehouse.expectation()\ndef out(x=lakehouse.Model(\"transactions\")):\n    return x\n"},
			want:  []string{"m.py:5: out has both @lakehouse.model() and @lakehouse.expectation(); use one"},
		},
		{
			name:  "resources",
			files: map[string]string{"m.py": head + "@lakehouse.model()\n@lakehouse.resources(cpus=0, memory=\"lots\", timeout=-1)\ndef out(x=lakehouse.Model(\"transactions\")):\n    return x\n"},
			want: []string{
				"m.py:4: resources cpus must be a number above 0",
				`m.py:4: resources memory "lots": use bytes`,
				"m.py:4: resources timeout -1: must be above 0 seconds",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := planDir(t, tc.files, tc.mod)
			got := diagnostics(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("diagnostics:\n%s\nwant %d starting with:\n%s", strings.Join(got, "\n"), len(tc.want), strings.Join(tc.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("diagnostic %d:\n%s\nwant prefix:\n%s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestPlanRefInputAndAliases(t *testing.T) {
	t.Parallel()
	plan, err := planDir(t, map[string]string{
		"m.py": `from lakehouse import Model as M, model as mdl, python
import lakehouse as lh


@mdl(name="renamed")
@python("3.12")
def f(old=M("sales.transactions", columns=["id"], ref="main"), e=lh.Model("raw.events")):
    return old
`,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := plan.Models[0]
	if n.Name != "renamed" || n.Function != "f" || n.Python.Version != "3.12" {
		t.Errorf("node = %+v", n)
	}
	if in := n.Inputs[0]; in.Ref != "main" || in.Commit == "" || in.SnapshotID != 1001 {
		t.Errorf("ref input = %+v", in)
	}
	if len(plan.Tables) != 2 || plan.Tables[0].Table != "raw.events" {
		t.Errorf("tables = %+v", plan.Tables)
	}
	if len(plan.Warnings) != 1 || !strings.Contains(plan.Warnings[0].Msg, "nothing reads it") {
		t.Errorf("warnings = %v", plan.Warnings)
	}
}

func TestQualifiedModelOutput(t *testing.T) {
	t.Parallel()
	plan, err := planDir(t, map[string]string{
		"m.py":  "import lakehouse\n\n@lakehouse.model(materialization=\"REPLACE\")\ndef daily(x=lakehouse.Model(\"transactions\")):\n    return x\n",
		"b.sql": "-- lakehouse: materialization=REPLACE\nSELECT * FROM sales.daily",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := plan.Models[1]; n.Name != "b" || len(n.Upstream) != 1 || n.Upstream[0] != "daily" || n.Inputs[0].Source != SourceModel {
		t.Errorf("b = %+v", n)
	}
}

func TestExtractNeedsPython(t *testing.T) {
	t.Parallel()
	_, err := Extract(context.Background(), "", t.TempDir(), []string{"m.py"})
	if !errdefs.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

func TestScaffoldPlans(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "my-report")
	files, err := Scaffold(dir)
	if err != nil || len(files) != 3 {
		t.Fatalf("Scaffold: %v %v", files, err)
	}
	plan, err := Build(context.Background(), Options{Dir: dir, Ref: catalog.Ref{Name: "main"}, Catalog: newFakeCatalog(),
		SQL: fakeSQL{}, Interpreters: testInterpreters, Extractor: realPython(t)})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Project != "my_report" || len(plan.Models) != 4 || len(plan.Warnings) != 0 {
		t.Errorf("plan %s: %d models, warnings %v", plan.Project, len(plan.Models), plan.Warnings)
	}
	if _, err := Scaffold(dir); !errdefs.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second Scaffold: %v", err)
	}
}
