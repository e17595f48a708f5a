package cli

import (
	"fmt"
	"io"

	"github.com/lakehouse-dev/lakehouse/catalog"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) diffCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "diff",
		Usage:     "tables and namespaces added, removed or changed between two refs",
		ArgsUsage: "A [B]",
		Description: "Shows what changed going from A to B; B defaults to the active branch,\n" +
			"so `lakehouse diff main` shows what the active branch would bring to main.",
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "schema", Usage: "also list column changes of changed tables"},
		},
		Action: e.diff,
	}
}

type diffView struct {
	From       string                  `json:"from"`
	To         string                  `json:"to"`
	FromCommit string                  `json:"from_commit"`
	ToCommit   string                  `json:"to_commit"`
	Tables     []catalog.TableDiff     `json:"tables"`
	Namespaces []catalog.NamespaceDiff `json:"namespaces"`
}

func (e *Env) diff(c *urfave.Context) error {
	args, err := positional(c, "A", "[B]")
	if err != nil {
		return err
	}
	from, err := catalog.ParseRef(args[0])
	if err != nil {
		return err
	}
	var toArg string
	if len(args) > 1 {
		toArg = args[1]
	}
	to, err := e.readRef(toArg)
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	res, err := svc.Diff(c.Context, from, to, catalog.DiffOptions{Schema: c.Bool("schema")})
	if err != nil {
		return err
	}
	v := diffView{From: from.String(), To: to.String(), FromCommit: string(res.From), ToCommit: string(res.To),
		Tables: nonNil(res.Tables), Namespaces: nonNil(res.Namespaces)}
	for i := range v.Tables {
		v.Tables[i].Schema = nonNil(v.Tables[i].Schema)
	}
	return e.emit(v, func(w io.Writer) error {
		fmt.Fprintf(w, "diff %s (%s) → %s (%s)\n", from, res.From.Short(), to, res.To.Short())
		if len(res.Tables) == 0 && len(res.Namespaces) == 0 {
			_, err := fmt.Fprintln(w, "no differences")
			return err
		}
		for _, n := range res.Namespaces {
			fmt.Fprintf(w, "%s namespace %s\n", changeMark(n.Change), n.Namespace)
		}
		for _, t := range res.Tables {
			fmt.Fprintf(w, "%s table %s", changeMark(t.Change), t.Table)
			if t.Change == "changed" && t.FromSnapshot != t.ToSnapshot {
				fmt.Fprintf(w, " (snapshot %s → %s)", snapshotCell(t.FromSnapshot), snapshotCell(t.ToSnapshot))
			}
			fmt.Fprintln(w)
			for _, s := range t.Schema {
				fmt.Fprintf(w, "    %s\n", schemaChangeLine(s))
			}
		}
		return nil
	})
}

// changeMark is the one-character mark of a change: + added, - removed,
// ~ changed.
func changeMark(change string) string {
	switch change {
	case "added":
		return "+"
	case "removed":
		return "-"
	default:
		return "~"
	}
}

func schemaChangeLine(s catalog.SchemaChange) string {
	switch s.Change {
	case "added":
		return fmt.Sprintf("+ column %s %s", s.Column, s.To)
	case "removed":
		return fmt.Sprintf("- column %s %s", s.Column, s.From)
	default:
		return fmt.Sprintf("~ column %s %s: %s → %s", s.Column, s.Change, s.From, s.To)
	}
}
