package planner

import (
	"reflect"
	"strings"
	"testing"
)

func TestDefaultsTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		want        int64
		diag        string
	}{
		{name: "duration", value: "30m", want: 1800},
		{name: "seconds", value: "90", want: 90},
		{name: "compound", value: `"1h30m"`, want: 5400},
		{name: "fraction", value: "1.5", want: 2},
		{name: "zero", value: "0", diag: `lakehouse.yml:4: defaults.timeout "0": must be above 0 seconds`},
		{name: "word", value: "soon", diag: `lakehouse.yml:4: defaults.timeout "soon": use seconds or a duration such as "10m"`},
		{name: "negative duration", value: "-5m", diag: `lakehouse.yml:4: defaults.timeout "-5m": use seconds or a duration such as "10m"`},
		{name: "mapping", value: "{a: 1}", diag: `lakehouse.yml:4: defaults.timeout must be a single value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := ParseConfig([]byte("project:\n  name: t\ndefaults:\n  timeout: " + tc.value + "\n"))
			var got []string
			for _, d := range ds {
				got = append(got, d.String())
			}
			if tc.diag != "" {
				want := []string{tc.diag}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("diagnostics %q, want %q", got, want)
				}
				return
			}
			if len(got) > 0 || cfg.Defaults.TimeoutSecs != tc.want {
				t.Fatalf("timeout = %d, diagnostics %q; want %d", cfg.Defaults.TimeoutSecs, got, tc.want)
			}
		})
	}
}

// TestPlanTimeouts: every node has its effective timeout — its own, else
// lakehouse.yml's, else an hour — and the tree names the exceptions.
func TestPlanTimeouts(t *testing.T) {
	t.Parallel()
	files := func(cfg string) map[string]string {
		return map[string]string{
			"m.py": "import lakehouse\n\n@lakehouse.model(materialization=\"REPLACE\")\n@lakehouse.resources(timeout=\"10m\")\n" +
				"def daily(x=lakehouse.Model(\"transactions\")):\n    return x\n",
			"b.sql":    "-- lakehouse: materialization=REPLACE\nSELECT * FROM sales.daily",
			ConfigFile: "project:\n  name: t\ndefaults:\n  python: \"3.11\"\n  namespace: sales\n" + cfg,
		}
	}
	for _, tc := range []struct {
		name, cfg      string
		plan, own, sql int64
		header         string
	}{
		{name: "default", plan: DefaultTimeout, own: 600, sql: DefaultTimeout, header: "timeout 1h each"},
		{name: "lakehouse.yml", cfg: "  timeout: 2h\n", plan: 7200, own: 600, sql: 7200, header: "timeout 2h each"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := planDir(t, files(tc.cfg), nil)
			if err != nil {
				t.Fatal(err)
			}
			if plan.TimeoutSecs != tc.plan || plan.Models[0].Resources.TimeoutSecs != tc.own || plan.Models[1].Resources.TimeoutSecs != tc.sql {
				t.Errorf("timeouts: plan %d, daily %d, b %d", plan.TimeoutSecs, plan.Models[0].Resources.TimeoutSecs, plan.Models[1].Resources.TimeoutSecs)
			}
			var tree strings.Builder
			plan.WriteTree(&tree)
			lines := strings.Split(tree.String(), "\n")
			if !strings.HasSuffix(lines[0], tc.header) {
				t.Errorf("header %q does not end with %q", lines[0], tc.header)
			}
			if !strings.Contains(tree.String(), "daily  python 3.11") || !strings.Contains(tree.String(), "timeout 10m\n") ||
				strings.Count(tree.String(), "timeout 10m") != 1 {
				t.Errorf("tree:\n%s", tree.String())
			}
		})
	}
}

func TestFormatSeconds(t *testing.T) {
	t.Parallel()
	for secs, want := range map[int64]string{0: "0s", 45: "45s", 60: "1m", 3600: "1h", 5400: "1h30m", 3725: "1h2m5s"} {
		if got := FormatSeconds(secs); got != want {
			t.Errorf("FormatSeconds(%d) = %q, want %q", secs, got, want)
		}
	}
}
