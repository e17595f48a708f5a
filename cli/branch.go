package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) branchCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "branch",
		Usage: "list, create, remove, rename and inspect branches",
		Subcommands: []*urfave.Command{
			{Name: "ls", Usage: "list branches (* marks the active one)", Action: e.branchList},
			{
				Name: "create", Usage: "create a branch (it copies no data)", ArgsUsage: "NAME",
				Flags:  []urfave.Flag{fromRefFlag()},
				Action: e.branchCreate,
			},
			{Name: "rm", Usage: "remove a branch", ArgsUsage: "NAME", Action: e.branchRemove},
			{Name: "rename", Usage: "rename a branch", ArgsUsage: "OLD NEW", Action: e.branchRename},
			{Name: "get", Usage: "show a branch and its tables", ArgsUsage: "NAME", Action: e.branchGet},
		},
	}
}

func fromRefFlag() urfave.Flag {
	return &urfave.StringFlag{Name: "from-ref", Usage: "ref to start from (default: the active branch)"}
}

// branchView is a branch in JSON output.
type branchView struct {
	Name    string    `json:"name"`
	Head    string    `json:"head"`
	Active  bool      `json:"active"`
	Time    time.Time `json:"time,omitzero"`
	Author  string    `json:"author,omitempty"`
	Message string    `json:"message,omitempty"`
}

func viewBranch(b catalog.BranchInfo, active catalog.BranchName) branchView {
	v := branchView{Name: string(b.Name), Head: string(b.Head), Active: b.Name == active}
	if b.Commit != nil {
		v.Time, v.Author, v.Message = b.Commit.Time.UTC(), b.Commit.Author, b.Commit.Message
	}
	return v
}

func (e *Env) branchList(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	active, err := e.activeBranch()
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	branches, err := svc.ListBranches(c.Context)
	if err != nil {
		return err
	}
	views := make([]branchView, 0, len(branches))
	for _, b := range branches {
		views = append(views, viewBranch(b, active))
	}
	return e.emit(views, func(w io.Writer) error {
		t := e.newTable("", "BRANCH", "HEAD", "TIME", "AUTHOR", "MESSAGE")
		for _, v := range views {
			mark := " "
			if v.Active {
				mark = "*"
			}
			t.row(mark, v.Name, catalog.CommitID(v.Head).Short(), formatTime(v.Time), orDash(v.Author), firstLine(v.Message))
		}
		return t.write(w)
	})
}

// createdView describes a new branch or tag.
type createdView struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Commit string `json:"commit"`
	From   string `json:"from"`
}

func (e *Env) branchCreate(c *urfave.Context) error {
	args, err := positional(c, "NAME")
	if err != nil {
		return err
	}
	name, err := catalog.ParseBranchName(args[0])
	if err != nil {
		return err
	}
	from, err := e.readRef(c.String("from-ref"))
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	info, err := svc.CreateBranch(c.Context, name, from)
	if err != nil {
		return err
	}
	v := createdView{Name: string(name), Kind: "branch", Commit: string(info.Head), From: from.String()}
	return e.emit(v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "created branch %s at %s (from %s)\n", name, info.Head.Short(), from)
		return err
	})
}

// removedView describes a removed branch or tag.
type removedView struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Removed bool   `json:"removed"`
}

func (e *Env) branchRemove(c *urfave.Context) error {
	args, err := positional(c, "NAME")
	if err != nil {
		return err
	}
	name, err := catalog.ParseBranchName(args[0])
	if err != nil {
		return err
	}
	active, err := e.activeBranch()
	if err != nil {
		return err
	}
	if name == active && name != catalog.MainBranch {
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"checkout another branch first (`lakehouse checkout main`)",
			"cannot remove %s: it is the active branch", name)
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	if err := svc.DeleteBranch(c.Context, name); err != nil {
		return err
	}
	return e.emit(removedView{Name: string(name), Kind: "branch", Removed: true}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "removed branch %s\n", name)
		return err
	})
}

type renamedView struct {
	From         string `json:"from"`
	To           string `json:"to"`
	Head         string `json:"head"`
	ActiveBranch string `json:"active_branch"`
}

func (e *Env) branchRename(c *urfave.Context) error {
	args, err := positional(c, "OLD", "NEW")
	if err != nil {
		return err
	}
	from, err := catalog.ParseBranchName(args[0])
	if err != nil {
		return err
	}
	to, err := catalog.ParseBranchName(args[1])
	if err != nil {
		return err
	}
	active, err := e.activeBranch()
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	// Renaming the active branch changes the profile too: staged first,
	// put in place after, the rename undone if that fails (see checkout).
	var staged *stagedProfile
	if active == from {
		if staged, err = e.stageActiveBranch(to); err != nil {
			return err
		}
		defer staged.abort()
	}
	info, err := svc.RenameBranch(c.Context, from, to)
	if err != nil {
		return err
	}
	if staged != nil {
		if err := staged.commit(); err != nil {
			if _, rerr := svc.RenameBranch(context.WithoutCancel(c.Context), to, from); rerr != nil {
				return fmt.Errorf("%w (branch %s was renamed to %s, and renaming it back failed: %v)", err, from, to, rerr)
			}
			return err
		}
		active = to
	}
	v := renamedView{From: string(from), To: string(to), Head: string(info.Head), ActiveBranch: string(active)}
	return e.emit(v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "renamed branch %s to %s\n", from, to)
		return err
	})
}

type branchDetail struct {
	Name   string         `json:"name"`
	Head   string         `json:"head"`
	Active bool           `json:"active"`
	Commit *commitView    `json:"commit"`
	Tables []tableSummary `json:"tables"`
}

func (e *Env) branchGet(c *urfave.Context) error {
	args, err := positional(c, "NAME")
	if err != nil {
		return err
	}
	name, err := catalog.ParseBranchName(args[0])
	if err != nil {
		return err
	}
	active, err := e.activeBranch()
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	info, err := svc.GetBranch(c.Context, name)
	if err != nil {
		return err
	}
	ref := catalog.Ref{Name: string(name)}
	if info.Commit == nil {
		if info.Commit, err = svc.Resolve(c.Context, ref); err != nil {
			return err
		}
	}
	tables, err := svc.ListTables(c.Context, ref, "")
	if err != nil {
		return err
	}
	v := branchDetail{Name: string(name), Head: string(info.Head), Active: name == active,
		Commit: viewCommit(info.Commit), Tables: viewTables(tables)}
	return e.emit(v, func(w io.Writer) error {
		var f fields
		f.add("branch", v.Name)
		f.add("head", info.Head.Short())
		f.add("time", formatTime(info.Commit.Time))
		f.add("author", info.Commit.Author)
		f.add("message", firstLine(info.Commit.Message))
		f.add("tables", fmt.Sprint(len(tables)))
		if err := f.write(w); err != nil {
			return err
		}
		if len(tables) == 0 {
			return nil
		}
		fmt.Fprintln(w)
		return e.tablesTable(v.Tables).write(w)
	})
}
