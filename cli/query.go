package cli

import (
	urfave "github.com/urfave/cli/v2"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// queryCommand is `lakehouse query`. Placeholder until the query path lands.
func (e *Env) queryCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "query",
		Usage:     "run SQL on catalog tables at a ref",
		ArgsUsage: "SQL",
		Action: func(c *urfave.Context) error {
			return errdefs.New(errdefs.ErrUnavailable, "queries are not available in this build yet")
		},
	}
}
