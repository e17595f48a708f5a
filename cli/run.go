package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
)

// runCommand is `lakehouse run`: plan and validate a pipeline project at a
// ref, then run it as one transaction on that branch.
func (e *Env) runCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "run",
		Usage:     "plan, validate and run a pipeline project",
		ArgsUsage: "[DIR]",
		Description: "Reads the project folder (lakehouse.yml, *.py, *.sql; default: the current folder),\n" +
			"builds the DAG of models and validates it against the catalog at the ref without\n" +
			"running any user code. --dry-run prints the plan: a tree on a terminal, or JSON\n" +
			"with -O json. Every problem is reported at once, each at file:line (exit 2).\n\n" +
			"Without --dry-run the models run, independent ones in parallel, Python models in\n" +
			"their own environments and SQL models in DuckDB, passing Arrow tables through\n" +
			"shared memory. Materialized models are written on a run branch, merged into the\n" +
			"target branch in one commit when everything succeeded; a failed or interrupted\n" +
			"run leaves the target unchanged (exit 1) and keeps its run branch for inspection\n" +
			"(--keep-failed). Every run is recorded: lakehouse runs ls / get / logs, rerun.\n\n" +
			"With --addr (a lakehouse server) the project folder is sent to the server (at most\n" +
			"64 MiB compressed) and runs there, showing the same output; --detach prints the run\n" +
			"id and returns while the run goes on (follow it with runs logs --follow).\n\n" +
			"Python files are read with the newest Python 3.9-3.13 found on PATH or under\n" +
			"$PYENV_ROOT/versions (set LAKEHOUSE_PYTHON to a binary to add one).",
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "project-dir", Aliases: []string{"p"}, Usage: "pipeline project folder (default: .)"},
			&urfave.StringFlag{Name: "ref", Aliases: []string{"r"}, Usage: "branch to read and write (default: the active branch)"},
			&urfave.StringFlag{Name: "namespace", Aliases: []string{"n"}, Usage: "namespace of models and unqualified tables (default: defaults.namespace, else the profile's)"},
			&urfave.StringSliceFlag{Name: "param", Usage: "set a parameter: --param NAME=VALUE (repeatable)"},
			&urfave.BoolFlag{Name: "dry-run", Usage: "plan and validate only; print the plan"},
			&urfave.BoolFlag{Name: "strict", Usage: "warnings fail the plan, and failed expectations the run"},
			&urfave.BoolFlag{Name: "no-cache", Usage: "recompute every model"},
			&urfave.BoolFlag{Name: "no-fuse", Usage: "run every Python model in its own interpreter, writing every output (by default a chain of models passes tables in memory)"},
			&urfave.StringFlag{Name: "preview", Value: "head", Usage: "show outputs as they are computed: head or off"},
			&urfave.StringFlag{Name: "keep-failed", Value: "7d", Usage: "how long run branches of failed runs are kept (e.g. 7d, 12h, 0 to drop at once)"},
			&urfave.StringFlag{Name: "launcher", Value: launchers.Auto, Usage: "function launcher: auto (containerd when its socket answers, else process), process or containerd"},
			&urfave.StringFlag{Name: "isolation", Value: launchers.IsolationAuto, Usage: "function isolation: auto, or none to run functions unisolated where the machine offers no sandbox (see lakehouse info)"},
			&urfave.BoolFlag{Name: "detach", Usage: "with a server (--addr): print the run id and return while the run goes on in the server"},
			&urfave.IntFlag{Name: "priority", Usage: "with a server: 1 (lowest) to 10 (highest), which of the runs waiting for queries to finish starts its next model first (default 5)"},
		},
		Action: e.run,
	}
}

// runFlags are the options of run and rerun.
type runFlags struct {
	strict, noCache bool
	noFuse          bool
	preview         bool
	keepFailed      time.Duration
	launcher        string
	isolation       string
	// recordLater: the caller prints the record under -O json (rerun adds
	// the match results first).
	recordLater bool
}

func (e *Env) parseRunFlags(c *urfave.Context) (runFlags, error) {
	f := runFlags{strict: c.Bool("strict"), noCache: c.Bool("no-cache"), noFuse: c.Bool("no-fuse"), launcher: c.String("launcher"), isolation: launchers.IsolationAuto}
	if c.IsSet("isolation") {
		f.isolation = c.String("isolation")
	}
	if f.isolation != launchers.IsolationAuto && f.isolation != launchers.IsolationNone {
		return f, usageError(c, "invalid --isolation %q: use auto or none", f.isolation)
	}
	switch p := c.String("preview"); p {
	case "head":
		f.preview = true
	case "off":
	default:
		return f, usageError(c, "invalid --preview %q: use head or off", p)
	}
	if f.launcher != launchers.Auto && f.launcher != launchers.Process && f.launcher != launchers.Containerd {
		return f, usageError(c, "invalid --launcher %q: use auto, process or containerd", f.launcher)
	}
	d, err := parseRetention(c.String("keep-failed"))
	if err != nil {
		return f, usageError(c, "invalid --keep-failed %q: use a duration such as 7d, 36h or 0", c.String("keep-failed"))
	}
	if d == 0 {
		d = -1 // drop at once
	}
	f.keepFailed = d
	return f, nil
}

// parseRetention parses a Go duration, also with a d (days) suffix.
func parseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("bad duration")
		}
		return time.Duration(days * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration")
	}
	return d, nil
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
	if _, err := e.parseRunFlags(c); err != nil {
		return err
	}
	prio := c.Int("priority")
	if prio < 0 || prio > 10 || c.IsSet("priority") && prio == 0 {
		return usageError(c, "invalid --priority %d: use 1 (lowest) to 10 (highest)", prio)
	}
	ref, err := e.readRef(c.String("ref"))
	if err != nil {
		return err
	}
	if s := c.String("namespace"); s != "" {
		if _, err = catalog.ParseNamespace(s); err != nil {
			return err
		}
	}
	dryRun, detach := c.Bool("dry-run"), c.Bool("detach")
	if dryRun && detach {
		return usageError(c, "--detach runs a pipeline in the server; a --dry-run only plans it: give one")
	}
	if !dryRun {
		if _, err := runTarget(c.Context, e, ref); err != nil {
			return err
		}
	}
	prof, err := e.Profile()
	if err != nil {
		return err
	}
	b := flight.RunBody{Dir: dir, Ref: ref.String(), Namespace: c.String("namespace"), ProfileNamespace: string(prof.Namespace),
		Parameters: c.StringSlice("param"), Strict: c.Bool("strict"), NoCache: c.Bool("no-cache"), NoFuse: c.Bool("no-fuse"),
		Preview: c.String("preview"), KeepFailed: c.String("keep-failed"), Launcher: c.String("launcher"),
		DryRun: dryRun, Detach: detach, Priority: prio, User: e.author(prof)}
	if c.IsSet("isolation") {
		b.Isolation = c.String("isolation")
	}
	if abs, err := filepath.Abs(dir); err == nil {
		b.ProjectDir = abs
	}
	runs, err := e.runService()
	if err != nil {
		return err
	}
	if _, remote := runs.(*flight.Client); remote {
		// A folder that is not a project is refused here, as embedded.
		if _, _, err := planner.LoadProject(dir); err != nil {
			return err
		}
		if b.Project, err = packProject(dir); err != nil {
			return err
		}
	}
	return e.showRun(c.Context, runs, detach, func(ctx context.Context, send func(*flight.RunEvent) error) error {
		return runs.Run(ctx, b, send)
	})
}

// planProject builds the plan of the project in dir at ref. profNS is the
// namespace of the user's profile. Of the flags, --strict and --no-fuse
// shape the plan.
func (e *Env) planProject(ctx context.Context, dir string, ref catalog.Ref, ns, profNS catalog.Namespace, params []string, f runFlags) (*planner.Plan, error) {
	svc, err := e.Service(ctx)
	if err != nil {
		return nil, err
	}
	parser := newSQLParser()
	defer parser.Close()
	plan, err := planner.Build(ctx, planner.Options{
		Dir:              dir,
		Ref:              ref,
		Namespace:        ns,
		ProfileNamespace: profNS,
		Params:           params,
		Catalog:          svc,
		SQL:              parser,
		Interpreters:     envcache.FindPythons(envcache.PythonSearch{Getenv: e.machineEnv}),
		Strict:           f.strict,
		NoFuse:           f.noFuse,
	})
	if err != nil {
		return nil, err
	}
	e.Log.Debug("planned pipeline", "project", plan.Project, "models", len(plan.Models),
		"extract", plan.Timings.Extract, "plan", plan.Timings.Plan)
	return plan, nil
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
