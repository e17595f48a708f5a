package flight

import (
	"context"

	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
)

var _ fleet.Control = (*Client)(nil)

// RegisterWorker joins a worker to the control plane's fleet
// (fleet.Control).
func (c *Client) RegisterWorker(ctx context.Context, r fleet.Registration) (fleet.Lease, error) {
	var l fleet.Lease
	return l, c.call(ctx, ActionRegisterWorker, r, &l)
}

// WorkerHeartbeat reports a worker alive under its lease
// (fleet.Control).
func (c *Client) WorkerHeartbeat(ctx context.Context, hb fleet.Heartbeat) error {
	return c.call(ctx, ActionWorkerHeartbeat, hb, nil)
}

// ListWorkers lists the control plane's workers.
func (c *Client) ListWorkers(ctx context.Context) ([]fleet.WorkerInfo, error) {
	var ws []fleet.WorkerInfo
	return ws, c.call(ctx, ActionListWorkers, struct{}{}, &ws)
}
