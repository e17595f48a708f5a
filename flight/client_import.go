package flight

import (
	"context"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// ImportTable implements catalog.Service.
func (c *Client) ImportTable(ctx context.Context, req catalog.ImportRequest) (*catalog.ImportResult, error) {
	return nil, errdefs.New(errdefs.ErrFailedPrecondition, "table import through a server is not built yet")
}
