package flight

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

var _ Runs = (*Client)(nil)

// runEvents decodes each result of a run's stream as a RunEvent.
func runEvents(typ string, send func(*RunEvent) error) func([]byte) error {
	return func(b []byte) error {
		var ev RunEvent
		if err := decodeRecordJSON(b, &ev); err != nil {
			return fmt.Errorf("%s: bad event from the server: %w", typ, err)
		}
		return send(&ev)
	}
}

// decodeRecordJSON decodes JSON holding run records: numbers stay as
// written (a parameter of 1000000 must not come back as 1e+06).
func decodeRecordJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// callRecords runs a one-result action whose answer holds run records.
func (c *Client) callRecords(ctx context.Context, typ string, body, out any) error {
	got := false
	err := c.Do(ctx, typ, body, func(b []byte) error {
		got = true
		if err := decodeRecordJSON(b, out); err != nil {
			return fmt.Errorf("%s: bad answer from the server: %w", typ[len(ActionPrefix):], err)
		}
		return nil
	})
	if err == nil && !got {
		return fmt.Errorf("%s: the server sent no answer", typ[len(ActionPrefix):])
	}
	return err
}

// Run implements Runs.
func (c *Client) Run(ctx context.Context, b RunBody, send func(*RunEvent) error) error {
	if b.User == "" {
		b.User = c.opts.Author
	}
	return c.Do(ctx, ActionRun, b, runEvents("Run", send))
}

// Rerun implements Runs.
func (c *Client) Rerun(ctx context.Context, b RerunBody, send func(*RunEvent) error) error {
	if b.User == "" {
		b.User = c.opts.Author
	}
	return c.Do(ctx, ActionRerun, b, runEvents("Rerun", send))
}

// GetRun implements Runs.
func (c *Client) GetRun(ctx context.Context, id string) (*runrec.Record, error) {
	var rec runrec.Record
	if err := c.callRecords(ctx, ActionGetRun, RunIDBody{ID: id}, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// ListRuns implements Runs.
func (c *Client) ListRuns(ctx context.Context, limit int) ([]*runrec.Record, error) {
	var recs []*runrec.Record
	if err := c.callRecords(ctx, ActionListRuns, ListRunsBody{Limit: limit}, &recs); err != nil {
		return nil, err
	}
	return recs, nil
}

// RunLogs implements Runs.
func (c *Client) RunLogs(ctx context.Context, b RunLogsBody, send func(runrec.LogLine) error) error {
	return c.Do(ctx, ActionRunLogs, b, func(raw []byte) error {
		var l runrec.LogLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("RunLogs: bad line from the server: %w", err)
		}
		return send(l)
	})
}

// CancelRun implements Runs.
func (c *Client) CancelRun(ctx context.Context, id string) (*CancelRunResult, error) {
	var r CancelRunResult
	if err := c.call(ctx, ActionCancelRun, RunIDBody{ID: id}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// DeleteRun implements Runs.
func (c *Client) DeleteRun(ctx context.Context, id string) (*DeleteRunResult, error) {
	var r DeleteRunResult
	if err := c.call(ctx, ActionDeleteRun, RunIDBody{ID: id}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
