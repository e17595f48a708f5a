package cli

import (
	"fmt"
	"io"

	"github.com/lakehouse-dev/lakehouse/catalog"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) tagCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "tag",
		Usage: "list, create and remove tags (read-only names for commits)",
		Subcommands: []*urfave.Command{
			{Name: "ls", Usage: "list tags", Action: e.tagList},
			{
				Name: "create", Usage: "create a tag", ArgsUsage: "NAME",
				Flags:  []urfave.Flag{fromRefFlag()},
				Action: e.tagCreate,
			},
			{Name: "rm", Usage: "remove a tag", ArgsUsage: "NAME", Action: e.tagRemove},
		},
	}
}

type tagView struct {
	Name   string `json:"name"`
	Commit string `json:"commit"`
}

func (e *Env) tagList(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	tags, err := svc.ListTags(c.Context)
	if err != nil {
		return err
	}
	views := make([]tagView, 0, len(tags))
	for _, t := range tags {
		views = append(views, tagView{Name: string(t.Name), Commit: string(t.Commit)})
	}
	return e.emit(views, func(w io.Writer) error {
		t := e.newTable("TAG", "COMMIT")
		for _, v := range views {
			t.row(v.Name, catalog.CommitID(v.Commit).Short())
		}
		return t.write(w)
	})
}

func (e *Env) tagCreate(c *urfave.Context) error {
	args, err := positional(c, "NAME")
	if err != nil {
		return err
	}
	name, err := catalog.ParseTagName(args[0])
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
	info, err := svc.CreateTag(c.Context, name, from)
	if err != nil {
		return err
	}
	v := createdView{Name: string(name), Kind: "tag", Commit: string(info.Commit), From: from.String()}
	return e.emit(v, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "created tag %s at %s (from %s)\n", name, info.Commit.Short(), from)
		return err
	})
}

func (e *Env) tagRemove(c *urfave.Context) error {
	args, err := positional(c, "NAME")
	if err != nil {
		return err
	}
	name, err := catalog.ParseTagName(args[0])
	if err != nil {
		return err
	}
	svc, err := e.Service(c.Context)
	if err != nil {
		return err
	}
	if err := svc.DeleteTag(c.Context, name); err != nil {
		return err
	}
	return e.emit(removedView{Name: string(name), Kind: "tag", Removed: true}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "removed tag %s\n", name)
		return err
	})
}
