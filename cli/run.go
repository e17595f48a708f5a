package cli

import (
	urfave "github.com/urfave/cli/v2"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// runCommand is `lakehouse run`. Placeholder until the planner lands.
func (e *Env) runCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "run",
		Usage: "plan, validate and run a pipeline project",
		Action: func(c *urfave.Context) error {
			return errdefs.New(errdefs.ErrUnavailable, "pipelines are not available in this build yet")
		},
	}
}

// initCommand is `lakehouse init`. Placeholder until the planner lands.
func (e *Env) initCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "init",
		Usage:     "scaffold a pipeline project",
		ArgsUsage: "[DIR]",
		Action: func(c *urfave.Context) error {
			return errdefs.New(errdefs.ErrUnavailable, "pipelines are not available in this build yet")
		},
	}
}
