package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// runsCommand is `lakehouse runs`: run records and their logs.
func (e *Env) runsCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "runs",
		Usage: "run records and their logs",
		Description: "Every run (also failed and dry runs) is recorded under <data-dir>/runs: who ran\n" +
			"what on which commit, the exact project files, environments, parameters, per-model\n" +
			"timings, status and every log line. Records stay until `runs rm`.",
		Subcommands: []*urfave.Command{
			{Name: "ls", Usage: "list runs, newest first", Action: e.runsList,
				Flags: []urfave.Flag{&urfave.IntFlag{Name: "limit", Aliases: []string{"n"}, Value: 20, Usage: "show at most N runs (0: all)"}}},
			{Name: "get", Usage: "show one run", ArgsUsage: "RUN_ID", Action: e.runsGet},
			{Name: "logs", Usage: "print a run's logs", ArgsUsage: "RUN_ID", Action: e.runsLogs,
				Flags: []urfave.Flag{
					&urfave.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "only this model's lines"},
					&urfave.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines until the run ends"},
				}},
			{Name: "cancel", Usage: "stop a running run, its target untouched (as Ctrl-C would)", ArgsUsage: "RUN_ID", Action: e.runsCancel},
			{Name: "rm", Usage: "delete a run's record, logs and code", ArgsUsage: "RUN_ID", Action: e.runsRemove},
		},
	}
}

// runArg is the RUN_ID argument of a runs command and the service to ask.
func (e *Env) runArg(c *urfave.Context) (flight.Runs, string, error) {
	args, err := positional(c, "RUN_ID")
	if err != nil {
		return nil, "", err
	}
	runs, err := e.runService()
	if err != nil {
		return nil, "", err
	}
	return runs, args[0], nil
}

type runSummary struct {
	ID       string         `json:"id"`
	Status   runrec.Status  `json:"status"`
	Project  string         `json:"project"`
	Target   string         `json:"target"`
	User     string         `json:"user"`
	Started  time.Time      `json:"started"`
	Duration float64        `json:"duration_s"`
	Models   int            `json:"models"`
	Failed   string         `json:"failed_model,omitempty"`
	RerunOf  string         `json:"rerun_of,omitempty"`
	Params   map[string]any `json:"parameters"`
}

func (e *Env) runsList(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	runs, err := e.runService()
	if err != nil {
		return err
	}
	recs, err := runs.ListRuns(c.Context, c.Int("limit"))
	if err != nil {
		return err
	}
	out := make([]runSummary, 0, len(recs))
	for _, r := range recs {
		out = append(out, runSummary{ID: r.ID, Status: r.Status, Project: r.Project, Target: r.Target, User: r.User,
			Started: r.Started, Duration: r.Duration, Models: len(r.Models), Failed: r.FailedModel, RerunOf: r.RerunOf, Params: r.Params})
	}
	return e.emit(out, func(w io.Writer) error {
		if len(out) == 0 {
			fmt.Fprintln(w, "no runs yet: run a pipeline with `lakehouse run -p DIR`")
			return nil
		}
		t := e.newTable("ID", "STATUS", "PROJECT", "TARGET", "STARTED", "DURATION", "MODELS")
		for _, r := range out {
			status := string(r.Status)
			if r.Failed != "" {
				status += " (" + r.Failed + ")"
			}
			t.row(r.ID, status, r.Project, r.Target, r.Started.Local().Format("2006-01-02 15:04:05"),
				fmt.Sprintf("%.1f s", r.Duration), strconv.Itoa(r.Models))
		}
		return t.write(w)
	})
}

func (e *Env) runsGet(c *urfave.Context) error {
	runs, id, err := e.runArg(c)
	if err != nil {
		return err
	}
	rec, err := runs.GetRun(c.Context, id)
	if err != nil {
		return err
	}
	return e.emit(rec, func(w io.Writer) error {
		fmt.Fprintf(w, "run %s  %s\n", rec.ID, rec.Status)
		fmt.Fprintf(w, "project      %s (%s)\n", rec.Project, rec.ProjectDir)
		fmt.Fprintf(w, "user         %s\n", rec.User)
		fmt.Fprintf(w, "target       %s\n", rec.Target)
		fmt.Fprintf(w, "start commit %s\n", rec.StartCommit)
		if rec.EndCommit != "" {
			fmt.Fprintf(w, "end commit   %s\n", rec.EndCommit)
		}
		if rec.RunBranch != "" {
			kept := "deleted"
			if rec.BranchKept {
				kept = "kept"
			}
			fmt.Fprintf(w, "run branch   %s (%s)\n", rec.RunBranch, kept)
		}
		if rec.RerunOf != "" {
			fmt.Fprintf(w, "rerun of     %s\n", rec.RerunOf)
		}
		fmt.Fprintf(w, "started      %s\n", rec.Started.Local().Format(time.RFC3339))
		if !rec.Ended.IsZero() {
			fmt.Fprintf(w, "duration     %.2f s\n", rec.Duration)
		}
		if rec.Launcher != "" {
			fmt.Fprintf(w, "launcher     %s\n", rec.Launcher)
		}
		fmt.Fprintf(w, "code         %d file(s), sha256 %s\n", len(rec.Files), short12(rec.CodeHash))
		if len(rec.Params) > 0 {
			keys := make([]string, 0, len(rec.Params))
			for k := range rec.Params {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var ps []string
			for _, k := range keys {
				ps = append(ps, fmt.Sprintf("%s=%v", k, rec.Params[k]))
			}
			fmt.Fprintf(w, "parameters   %s\n", strings.Join(ps, " "))
		}
		if rec.Error != "" {
			fmt.Fprintf(w, "error        %s\n", rec.Error)
		}
		for _, env := range rec.Envs {
			fmt.Fprintf(w, "environment  python %s for %s: %s\n", env.Python, strings.Join(env.Models, ", "), strings.Join(env.Packages, " "))
		}
		t := e.newTable("MODEL", "KIND", "STATE", "SECONDS", "ROWS", "TABLE")
		for _, m := range rec.Models {
			state := m.State
			if m.Expectation != nil {
				state += fmt.Sprintf(" (%v)", *m.Expectation)
			}
			t.row(m.Name, m.Kind, state, fmt.Sprintf("%.2f", m.Seconds), strconv.FormatInt(m.Rows, 10), m.Table)
		}
		fmt.Fprintln(w)
		if err := t.write(w); err != nil {
			return err
		}
		for _, m := range rec.Models {
			if m.State != runrec.StateFailed || m.Error == "" {
				continue
			}
			switch {
			case m.Traceback != "":
				fmt.Fprintf(w, "\n%s raised:\n", m.Name)
			case m.Error != rec.Error:
				fmt.Fprintf(w, "\n%s\n", m.Error)
			}
			for _, l := range tracebackLines(m.Traceback) {
				fmt.Fprintf(w, "  %s\n", l)
			}
		}
		for _, wn := range rec.Warnings {
			fmt.Fprintf(w, "warning: %s\n", wn)
		}
		if len(rec.Matches) > 0 {
			for _, k := range sortedMatchKeys(rec.Matches) {
				fmt.Fprintf(w, "output %s matches the original: %v\n", k, rec.Matches[k])
			}
		}
		return nil
	})
}

func sortedMatchKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (e *Env) runsLogs(c *urfave.Context) error {
	runs, id, err := e.runArg(c)
	if err != nil {
		return err
	}
	write := func(l runrec.LogLine) error {
		if e.JSON() {
			b, err := json.Marshal(l)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.Stdout, "%s\n", b)
			return err
		}
		prefix := "[" + l.Model + "]"
		if l.Stream == "stderr" || l.Stream == streamTraceback {
			prefix = "[" + l.Model + "!]"
		} else if l.Stream == "lakehouse" {
			prefix = "(" + l.Model + ")"
		}
		if l.Model == "" {
			prefix = "[lakehouse]"
		}
		_, err := fmt.Fprintf(e.Stdout, "%s %s %s\n", l.Time.Local().Format("15:04:05.000"), prefix, l.Text)
		return err
	}
	return runs.RunLogs(c.Context, flight.RunLogsBody{ID: id, Model: c.String("model"), Follow: c.Bool("follow")}, write)
}

const tracebackHeader = "Traceback (most recent call last):"

// streamTraceback is the stream of a failed function's traceback lines in
// `runs logs`; in the text form they are marked like stderr lines.
const streamTraceback = "traceback"

// tracebackLogLines are the traceback lines of rec's failed models (of
// model only, unless it is ""), timed when each model ended, in time order.
func tracebackLogLines(rec *runrec.Record, model string) []runrec.LogLine {
	var out []runrec.LogLine
	for _, m := range rec.Models {
		if m.Traceback == "" || model != "" && m.Name != model {
			continue
		}
		t := m.Ended
		if t.IsZero() {
			t = rec.Ended
		}
		for _, l := range tracebackLines(m.Traceback) {
			out = append(out, runrec.LogLine{Time: t, Model: m.Name, Stream: streamTraceback, Text: l})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// tracebackLines splits a function's traceback (its user frames and the
// exception) into lines, headed as Python heads one.
func tracebackLines(tb string) []string {
	tb = strings.TrimRight(tb, "\n")
	if tb == "" {
		return nil
	}
	lines := strings.Split(tb, "\n")
	if lines[0] != tracebackHeader {
		lines = append([]string{tracebackHeader}, lines...)
	}
	return lines
}

func (e *Env) runsCancel(c *urfave.Context) error {
	runs, id, err := e.runArg(c)
	if err != nil {
		return err
	}
	res, err := runs.CancelRun(c.Context, id)
	if err != nil {
		return err
	}
	return e.emit(map[string]string{"id": res.ID, "status": res.Status}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "asked run %s to stop; its target %s stays unchanged\n", res.ID, res.Target)
		return err
	})
}

func (e *Env) runsRemove(c *urfave.Context) error {
	runs, id, err := e.runArg(c)
	if err != nil {
		return err
	}
	res, err := runs.DeleteRun(c.Context, id)
	if err != nil {
		return err
	}
	out := map[string]string{"deleted": res.Deleted}
	if res.DeletedBranch != "" {
		out["deleted_branch"] = res.DeletedBranch
	}
	return e.emit(out, func(w io.Writer) error {
		if res.DeletedBranch != "" {
			_, err := fmt.Fprintf(w, "deleted run %s and its run branch %s\n", res.Deleted, res.DeletedBranch)
			return err
		}
		_, err := fmt.Fprintf(w, "deleted run %s\n", res.Deleted)
		return err
	})
}

// rerunCommand is `lakehouse rerun RUN_ID [-r BRANCH]`.
func (e *Env) rerunCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "rerun",
		Usage:     "run a recorded run's code again on its start commit",
		ArgsUsage: "RUN_ID",
		Description: "Plans the exact project files the run shipped, reading the tables as they were at\n" +
			"its start commit, with its parameters, and runs them (nothing is reused from the\n" +
			"result cache) into -r BRANCH (default: the original target; a missing branch is\n" +
			"created at the start commit). Then says whether each output matches the original.",
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "ref", Aliases: []string{"r"}, Usage: "branch to write to (default: the run's target)"},
			&urfave.BoolFlag{Name: "strict", Usage: "failed expectations fail the run"},
			&urfave.StringFlag{Name: "preview", Value: "off", Usage: "show outputs as they are computed: head or off"},
			&urfave.StringFlag{Name: "keep-failed", Value: "7d", Usage: "how long run branches of failed runs are kept"},
			&urfave.StringFlag{Name: "launcher", Value: launchers.Auto, Usage: "function launcher: auto, process or containerd"},
			&urfave.BoolFlag{Name: "detach", Usage: "with a server (--addr): print the run id and return while the rerun goes on"},
			&urfave.IntFlag{Name: "priority", Usage: "with a server: 1 (lowest) to 10 (highest), as run --priority"},
		},
		Action: e.rerun,
	}
}

func (e *Env) rerun(c *urfave.Context) error {
	runs, id, err := e.runArg(c)
	if err != nil {
		return err
	}
	if _, err := e.parseRunFlags(c); err != nil {
		return err
	}
	prof, err := e.Profile()
	if err != nil {
		return err
	}
	b := flight.RerunBody{RunID: id, Ref: c.String("ref"), Strict: c.Bool("strict"), Preview: c.String("preview"),
		KeepFailed: c.String("keep-failed"), Launcher: c.String("launcher"), Detach: c.Bool("detach"),
		Priority: c.Int("priority"), User: e.author(prof)}
	if b.Priority < 0 || b.Priority > 10 || c.IsSet("priority") && b.Priority == 0 {
		return usageError(c, "invalid --priority %d: use 1 (lowest) to 10 (highest)", b.Priority)
	}
	return e.showRun(c.Context, runs, b.Detach, func(ctx context.Context, send func(*flight.RunEvent) error) error {
		return runs.Rerun(ctx, b, send)
	})
}

// outWriter is where human messages go: stdout, or stderr under -O json.
func (e *Env) outWriter() io.Writer {
	if e.JSON() {
		return e.Stderr
	}
	return e.Stdout
}

// paramString renders a recorded parameter value as --param takes it.
func paramString(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
