package cli

import (
	"io"

	"github.com/lakehouse-dev/lakehouse/catalog"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) logCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "log",
		Usage:     "list commits, newest first",
		ArgsUsage: "[REF]",
		Description: "REF is a branch, a tag, branch@COMMIT, @COMMIT or branch@TIME;\n" +
			"default: the active branch.",
		Flags:  []urfave.Flag{limitFlag("commits")},
		Action: e.log,
	}
}

func limitFlag(what string) urfave.Flag {
	return &urfave.IntFlag{Name: "n", Aliases: []string{"limit"}, Usage: "show at most N " + what + " (0: all)"}
}

// limit reads -n, which must not be negative.
func limit(c *urfave.Context) (int, error) {
	n := c.Int("n")
	if n < 0 {
		return 0, usageError(c, "invalid -n %d: use 0 (all) or more", n)
	}
	return n, nil
}

func (e *Env) log(c *urfave.Context) error {
	args, err := positional(c, "[REF]")
	if err != nil {
		return err
	}
	var refArg string
	if len(args) > 0 {
		refArg = args[0]
	}
	ref, err := e.readRef(refArg)
	if err != nil {
		return err
	}
	n, err := limit(c)
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	commits, err := svc.Log(c.Context, ref, n)
	if err != nil {
		return err
	}
	views := viewCommits(commits)
	return e.emit(views, func(w io.Writer) error {
		t := e.newTable("COMMIT", "TIME", "AUTHOR", "RUN", "MESSAGE")
		for _, c := range commits {
			t.row(c.ID.Short(), formatTime(c.Time), orDash(c.Author), orDash(shortRun(c.Properties[catalog.PropRunID])), firstLine(c.Message))
		}
		return t.write(w)
	})
}

// shortRun shortens a run id for a table cell.
func shortRun(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
