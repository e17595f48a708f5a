package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	urfave "github.com/urfave/cli/v2"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// runCommand is `lakehouse run`: plan and validate a pipeline project at a
// ref, print the plan, and (in a later build) run it.
func (e *Env) runCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "run",
		Usage:     "plan, validate and run a pipeline project",
		ArgsUsage: "[DIR]",
		Description: "Reads the project folder (lakehouse.yml, *.py, *.sql; default: the current folder),\n" +
			"builds the DAG of models and validates it against the catalog at the ref without\n" +
			"running any user code. --dry-run prints the plan: a tree on a terminal, or JSON\n" +
			"with -O json. Every problem is reported at once, each at file:line (exit 2).\n\n" +
			"Python files are read with the newest Python 3.9-3.13 found on PATH or under\n" +
			"$PYENV_ROOT/versions (set LAKEHOUSE_PYTHON to a binary to add one). Running the\n" +
			"plan (without --dry-run) is not in this build yet (exit 6).",
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "project-dir", Aliases: []string{"p"}, Usage: "pipeline project folder (default: .)"},
			&urfave.StringFlag{Name: "ref", Aliases: []string{"r"}, Usage: "ref to plan against and write to (default: the active branch)"},
			&urfave.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "namespace of models and unqualified tables (default: defaults.namespace, else the profile's)"},
			&urfave.StringSliceFlag{Name: "param", Usage: "set a parameter: --param NAME=VALUE (repeatable)"},
			&urfave.BoolFlag{Name: "dry-run", Usage: "plan and validate only; print the plan"},
			&urfave.BoolFlag{Name: "strict", Usage: "warnings fail the plan, and failed expectations the run"},
			&urfave.BoolFlag{Name: "no-cache", Usage: "recompute every model"},
			&urfave.StringFlag{Name: "preview", Value: "head", Usage: "show outputs as they are computed: head or off"},
			&urfave.BoolFlag{Name: "detach", Usage: "return once the run has started"},
			&urfave.IntFlag{Name: "priority", Value: 5, Usage: "scheduling priority, 1 to 10"},
		},
		Action: e.run,
	}
}

func (e *Env) run(c *urfave.Context) error {
	args, err := positional(c, "[DIR]")
	if err != nil {
		return err
	}
	dir := c.String("project-dir")
	if len(args) == 1 {
		if dir != "" && dir != args[0] {
			return usageError(c, "the project folder is given twice (%s and -p %s); give one", args[0], dir)
		}
		dir = args[0]
	}
	if dir == "" {
		dir = "."
	}
	if p := c.String("preview"); p != "head" && p != "off" {
		return usageError(c, "invalid --preview %q: use head or off", p)
	}
	if n := c.Int("priority"); n < 1 || n > 10 {
		return usageError(c, "invalid --priority %d: use 1 to 10", n)
	}
	ref, err := e.readRef(c.String("ref"))
	if err != nil {
		return err
	}
	var ns catalog.Namespace
	if s := c.String("namespace"); s != "" {
		if ns, err = catalog.ParseNamespace(s); err != nil {
			return err
		}
	}
	prof, err := e.Profile()
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	parser := &lazyParser{}
	defer parser.Close()
	plan, err := planner.Build(c.Context, planner.Options{
		Dir:              dir,
		Ref:              ref,
		Namespace:        ns,
		ProfileNamespace: prof.Namespace,
		Params:           c.StringSlice("param"),
		Catalog:          svc,
		SQL:              parser,
		Interpreters:     planner.FindInterpreters(e.machineEnv),
		Strict:           c.Bool("strict"),
	})
	if err != nil {
		return err
	}
	e.Log.Debug("planned pipeline", "project", plan.Project, "models", len(plan.Models),
		"extract", plan.Timings.Extract, "plan", plan.Timings.Plan)
	if err := e.writePlan(plan); err != nil {
		return err
	}
	if c.Bool("dry-run") {
		return nil
	}
	return errdefs.WithHint(errdefs.ErrUnavailable, "use --dry-run to see the plan",
		"running pipelines is not available in this build yet")
}

func (e *Env) writePlan(p *planner.Plan) error {
	if e.JSON() {
		return p.WriteJSON(e.Stdout)
	}
	return p.WriteTree(e.Stdout)
}

// machineEnv reads the variables that locate Python interpreters. They
// describe the machine rather than the user's settings, so the process
// environment fills in what Getenv lacks (tests run with a bare Getenv).
func (e *Env) machineEnv(k string) string {
	if v := e.Getenv(k); v != "" {
		return v
	}
	switch k {
	case "PATH", "PYENV_ROOT":
		return os.Getenv(k)
	case "HOME":
		h, _ := os.UserHomeDir()
		return h
	}
	return ""
}

// lazyParser opens DuckDB's parser on the first SQL model, so projects
// without SQL do not pay for it.
type lazyParser struct {
	once sync.Once
	eng  *duckdb.Engine
	err  error
}

func (p *lazyParser) TableRefs(ctx context.Context, sql string) ([]planner.TableRef, error) {
	p.once.Do(func() { p.eng, p.err = duckdb.New() })
	if p.err != nil {
		return nil, p.err
	}
	refs, err := p.eng.TableRefs(ctx, sql)
	if err != nil {
		return nil, err
	}
	out := make([]planner.TableRef, len(refs))
	for i, r := range refs {
		out[i] = planner.TableRef{Schema: r.Schema, Name: r.Name, Pos: r.Pos}
	}
	return out, nil
}

// OutputColumns implements planner.SQLOutputParser with DuckDB's parse
// tree of the query.
func (p *lazyParser) OutputColumns(ctx context.Context, sql string) ([]string, bool, error) {
	p.once.Do(func() { p.eng, p.err = duckdb.New() })
	if p.err != nil {
		return nil, false, p.err
	}
	tree, err := p.eng.SerializeSQL(ctx, sql)
	if err != nil {
		return nil, false, err
	}
	cols, ok := planner.SelectOutputColumns(tree)
	return cols, ok, nil
}

var _ planner.SQLOutputParser = (*lazyParser)(nil)

func (p *lazyParser) Close() {
	if p.eng != nil {
		p.eng.Close()
	}
}

// initCommand is `lakehouse init [DIR]`: a sample project that plans
// against the sample table sales.transactions.
func (e *Env) initCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "init",
		Usage:     "scaffold a pipeline project",
		ArgsUsage: "[DIR]",
		Description: "Writes lakehouse.yml, models.py and top_countries.sql into DIR (default: the\n" +
			"current folder), overwriting nothing. The sample reads sales.transactions.",
		Action: func(c *urfave.Context) error {
			args, err := positional(c, "[DIR]")
			if err != nil {
				return err
			}
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			files, err := planner.Scaffold(dir)
			if err != nil {
				return err
			}
			v := struct {
				Dir   string   `json:"dir"`
				Files []string `json:"files"`
			}{dir, files}
			return e.emit(v, func(w io.Writer) error {
				fmt.Fprintf(w, "created pipeline project in %s:\n", dir)
				for _, f := range files {
					fmt.Fprintf(w, "  %s\n", filepath.Base(f))
				}
				fmt.Fprintf(w, "it reads the table sales.transactions; with the sample data:\n")
				fmt.Fprintf(w, "  lakehouse checkout -b <user>.dev\n")
				fmt.Fprintf(w, "  lakehouse namespace create sales\n")
				fmt.Fprintf(w, "  lakehouse table import sales.transactions --from testdata/sample/transactions\n")
				fmt.Fprintf(w, "then plan it: lakehouse run --dry-run -p %s\n", dir)
				return nil
			})
		},
	}
}
