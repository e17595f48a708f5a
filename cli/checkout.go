package cli

import (
	"context"
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
	// The profile change is staged (written and synced beside the profile
	// file) before the branch is created, and put in place after: a
	// profile that cannot be written fails the command before it changes
	// anything, and a branch created for a checkout that then fails is
	// removed again. The command does all it says or nothing.
	staged, err := e.stageActiveBranch(name)
	if err != nil {
		return err
	}
	defer staged.abort()
	var info catalog.BranchInfo
	if create {
		info, err = svc.CreateBranch(ctx, name, from)
	} else {
		info, err = svc.GetBranch(ctx, name)
	}
	if err != nil {
		return err
	}
	if err := staged.commit(); err != nil {
		if create {
			if derr := svc.DeleteBranch(context.WithoutCancel(ctx), name); derr != nil {
				return fmt.Errorf("%w (branch %s was created, and removing it again failed: %v)", err, name, derr)
			}
		}
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

// stageActiveBranch stages b as the profile's active branch (see
// stagedProfile).
func (e *Env) stageActiveBranch(b catalog.BranchName) (*stagedProfile, error) {
	p, err := e.Profile()
	if err != nil {
		return nil, err
	}
	np := *p
	np.ActiveBranch = b
	return e.stageProfile(np)
}
