package cli

import (
	"fmt"
	"io"

	"github.com/lakehouse-dev/lakehouse/catalog"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) checkoutCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "checkout",
		Usage:     "set the active branch (-b creates it)",
		ArgsUsage: "BRANCH",
		Description: "The active branch is the default ref of reads and the target of writes.\n" +
			"With -b the branch is created first, from --from-ref or the active branch.",
		Flags: []urfave.Flag{
			&urfave.BoolFlag{Name: "b", Usage: "create the branch first"},
			&urfave.StringFlag{Name: "from-ref", Usage: "with -b: the ref to branch from (default: the active branch)"},
		},
		Action: e.checkout,
	}
}

type checkoutView struct {
	ActiveBranch string `json:"active_branch"`
	Previous     string `json:"previous"`
	Head         string `json:"head"`
	Created      bool   `json:"created"`
	From         string `json:"from,omitempty"`
}

func (e *Env) checkout(c *urfave.Context) error {
	args, err := positional(c, "BRANCH")
	if err != nil {
		return err
	}
	create := c.Bool("b")
	var name catalog.BranchName
	if create {
		name, err = catalog.ParseBranchName(args[0])
	} else {
		name, err = e.branchArg(c.Context, args[0])
	}
	if err != nil {
		return err
	}
	if !create && c.IsSet("from-ref") {
		return usageError(c, "--from-ref needs -b (checkout -b %s --from-ref %s)", name, c.String("from-ref"))
	}
	from, err := e.readRef(c.String("from-ref"))
	if err != nil {
		return err
	}
	prev, err := e.activeBranch()
	if err != nil {
		return err
	}
	ctx := c.Context
	svc, err := e.Service(ctx)
	if err != nil {
		return err
	}
	var info catalog.BranchInfo
	if create {
		info, err = svc.CreateBranch(ctx, name, from)
	} else {
		info, err = svc.GetBranch(ctx, name)
	}
	if err != nil {
		return err
	}
	if err := e.setActiveBranch(name); err != nil {
		return err
	}
	v := checkoutView{ActiveBranch: string(name), Previous: string(prev), Head: string(info.Head), Created: create}
	if create {
		v.From = from.String()
	}
	return e.emit(v, func(w io.Writer) error {
		if create {
			fmt.Fprintf(w, "created branch %s at %s (from %s)\n", name, info.Head.Short(), from)
		}
		_, err := fmt.Fprintf(w, "switched to branch %s (head %s)\n", name, info.Head.Short())
		return err
	})
}

// setActiveBranch records b as the profile's active branch.
func (e *Env) setActiveBranch(b catalog.BranchName) error {
	p, err := e.Profile()
	if err != nil {
		return err
	}
	np := *p
	np.ActiveBranch = b
	return e.saveProfile(np)
}
