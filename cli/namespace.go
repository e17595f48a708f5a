package cli

import (
	"fmt"
	"io"

	"github.com/lakehouse-dev/lakehouse/catalog"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) namespaceCommand() *urfave.Command {
	return &urfave.Command{
		Name:    "namespace",
		Aliases: []string{"ns"},
		Usage:   "list, create and remove namespaces",
		Subcommands: []*urfave.Command{
			{
				Name: "ls", Usage: "list namespaces at a ref",
				Flags:  []urfave.Flag{refFlag()},
				Action: e.namespaceList,
			},
			{
				Name: "create", Usage: "create a namespace on a branch", ArgsUsage: "NAMESPACE",
				Flags:  []urfave.Flag{branchFlag()},
				Action: e.namespaceCreate,
			},
			{
				Name: "rm", Usage: "remove an empty namespace from a branch", ArgsUsage: "NAMESPACE",
				Flags:  []urfave.Flag{branchFlag()},
				Action: e.namespaceRemove,
			},
		},
	}
}

// refFlag is -r/--ref of read commands.
func refFlag() urfave.Flag {
	return &urfave.StringFlag{Name: "ref", Aliases: []string{"r"}, Usage: "ref to read (default: the active branch)"}
}

// branchFlag is -b/--branch of write commands.
func branchFlag() urfave.Flag {
	return &urfave.StringFlag{Name: "branch", Aliases: []string{"b"}, Usage: "branch to write to (default: the active branch)"}
}

type namespaceView struct {
	Name string `json:"name"`
}

func (e *Env) namespaceList(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	ref, err := e.readRef(c.String("ref"))
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	nss, err := svc.ListNamespaces(c.Context, ref)
	if err != nil {
		return err
	}
	views := make([]namespaceView, 0, len(nss))
	for _, ns := range nss {
		views = append(views, namespaceView{Name: string(ns)})
	}
	return e.emit(views, func(w io.Writer) error {
		t := e.newTable("NAMESPACE")
		for _, v := range views {
			t.row(v.Name)
		}
		return t.write(w)
	})
}

// writeView describes a commit made by a write command.
type writeView struct {
	Action    string      `json:"action"`
	Namespace string      `json:"namespace,omitempty"`
	Table     string      `json:"table,omitempty"`
	Branch    string      `json:"branch"`
	From      string      `json:"from,omitempty"`
	Commit    *commitView `json:"commit"`
}

func (e *Env) namespaceCreate(c *urfave.Context) error {
	return e.namespaceWrite(c, "created", func(svc catalog.Service, b catalog.BranchName, ns catalog.Namespace, o catalog.CommitOptions) (*catalog.Commit, error) {
		return svc.CreateNamespace(c.Context, b, ns, o)
	})
}

func (e *Env) namespaceRemove(c *urfave.Context) error {
	return e.namespaceWrite(c, "removed", func(svc catalog.Service, b catalog.BranchName, ns catalog.Namespace, o catalog.CommitOptions) (*catalog.Commit, error) {
		return svc.DeleteNamespace(c.Context, b, ns, o)
	})
}

func (e *Env) namespaceWrite(c *urfave.Context, action string,
	do func(catalog.Service, catalog.BranchName, catalog.Namespace, catalog.CommitOptions) (*catalog.Commit, error)) error {
	args, err := positional(c, "NAMESPACE")
	if err != nil {
		return err
	}
	ns, err := catalog.ParseNamespace(args[0])
	if err != nil {
		return err
	}
	opts, err := e.commitOptions("")
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	branch, err := e.writeBranch(c.Context, c.String("branch"))
	if err != nil {
		return err
	}
	commit, err := do(svc, branch, ns, opts)
	if err != nil {
		return err
	}
	v := writeView{Action: action, Namespace: string(ns), Branch: string(branch), Commit: viewCommit(commit)}
	return e.emit(v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s namespace %s on %s (commit %s)\n", action, ns, branch, shortID(commit))
		return err
	})
}
