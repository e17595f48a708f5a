package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) mergeCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "merge",
		Usage:     "merge a ref into a branch (conflicts are listed table by table)",
		ArgsUsage: "SOURCE",
		Description: "Merges SOURCE (a branch, tag or commit) into --into (default: the active branch)\n" +
			"in one atomic commit. A fast-forward moves the branch when it can, unless --no-ff.\n" +
			"As in git, -m is the message of a merge commit: a fast-forward makes no commit, so\n" +
			"it records no message (the command says so); add --no-ff to keep it.",
		Flags: []urfave.Flag{
			&urfave.StringFlag{Name: "into", Usage: "branch to merge into (default: the active branch)"},
			&urfave.BoolFlag{Name: "ff-only", Usage: "fail unless the merge is a fast-forward"},
			&urfave.BoolFlag{Name: "no-ff", Usage: "always create a merge commit"},
			messageFlag(),
		},
		Action: e.merge,
	}
}

type mergeView struct {
	Source   string      `json:"source"`
	Into     string      `json:"into"`
	Outcome  string      `json:"outcome"`
	Base     string      `json:"base"`
	Commit   *commitView `json:"commit"`
	Changed  []string    `json:"changed_tables"`
	Combined []string    `json:"combined_tables"`
}

func (e *Env) merge(c *urfave.Context) error {
	args, err := positional(c, "SOURCE")
	if err != nil {
		return err
	}
	source, err := catalog.ParseRef(args[0])
	if err != nil {
		return err
	}
	if c.Bool("ff-only") && c.Bool("no-ff") {
		return usageError(c, "--ff-only and --no-ff exclude each other")
	}
	mode := catalog.MergeFFAllowed
	switch {
	case c.Bool("ff-only"):
		mode = catalog.MergeFFOnly
	case c.Bool("no-ff"):
		mode = catalog.MergeNoFF
	}
	opts, err := e.commitOptions(c.String("message"))
	if err != nil {
		return err
	}
	into, err := e.activeBranch()
	if err != nil {
		return err
	}
	if s := c.String("into"); s != "" {
		if into, err = e.branchArg(c.Context, s); err != nil {
			return err
		}
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	res, err := svc.Merge(c.Context, catalog.MergeRequest{Source: source, Into: into, Mode: mode, Commit: opts})
	if err != nil {
		return err
	}
	if res.Outcome == "fast-forward" && c.IsSet("message") {
		// As git does, but not silently: a fast-forward has no commit of
		// its own to carry the message.
		fmt.Fprintf(e.Stderr, "note: a fast-forward makes no commit, so the -m message was not recorded; "+
			"merge with --no-ff to record it in a merge commit\n")
	}
	v := mergeView{Source: source.String(), Into: string(into), Outcome: res.Outcome, Base: string(res.Base),
		Commit: viewCommit(res.Commit), Changed: nonNil(res.Changed), Combined: nonNil(res.Combined)}
	return e.emit(v, func(w io.Writer) error {
		switch res.Outcome {
		case "up-to-date":
			fmt.Fprintf(w, "up-to-date: %s already contains %s\n", into, source)
		case "fast-forward":
			fmt.Fprintf(w, "fast-forward: %s is now at %s\n", into, shortID(res.Commit))
		default:
			fmt.Fprintf(w, "%s: %s merged into %s in commit %s\n", res.Outcome, source, into, shortID(res.Commit))
		}
		if len(res.Changed) > 0 {
			fmt.Fprintf(w, "changed tables: %s\n", strings.Join(res.Changed, ", "))
		}
		if len(res.Combined) > 0 {
			fmt.Fprintf(w, "combined tables (appended on both sides): %s\n", strings.Join(res.Combined, ", "))
		}
		return nil
	})
}
