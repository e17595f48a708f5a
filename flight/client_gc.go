package flight

import (
	"context"
	"encoding/json"
	"fmt"
)

var _ GarbageCollector = (*Client)(nil)

// GC implements GarbageCollector: the server collects its warehouse.
// When some files could not be deleted it returns the report of what was,
// and the error.
func (c *Client) GC(ctx context.Context, b GCBody) (*GCReport, error) {
	var rep *GCReport
	err := c.Do(ctx, ActionGC, b, func(body []byte) error {
		rep = &GCReport{}
		if err := json.Unmarshal(body, rep); err != nil {
			return fmt.Errorf("GC: bad answer from the server: %w", err)
		}
		return nil
	})
	if err == nil && rep == nil {
		return nil, fmt.Errorf("GC: the server sent no answer")
	}
	return rep, err
}
