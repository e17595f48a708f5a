package flight

import (
	"context"
	"encoding/json"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Query runs q on the server: GetFlightInfo plans and starts it (errors
// in the SQL come back here), DoGet streams its batches. Read the reader
// to its end or stop early, then Release it: that ends the stream.
func (c *Client) Query(ctx context.Context, q QueryCommand) (array.RecordReader, error) {
	cmd, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	info, err := c.fc.GetFlightInfo(c.callContext(ctx), &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
	if err != nil {
		return nil, c.err(err)
	}
	if len(info.GetEndpoint()) == 0 {
		return nil, errdefs.New(errdefs.ErrInternal, "the server answered the query with no endpoint")
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := c.fc.DoGet(c.callContext(sctx), info.GetEndpoint()[0].GetTicket())
	if err != nil {
		cancel()
		return nil, c.err(err)
	}
	r, err := flight.NewRecordReader(stream)
	if err != nil {
		cancel()
		return nil, c.err(err)
	}
	return &streamReader{r: r, cancel: cancel, c: c}, nil
}

// Explain plans q on the server without running it.
func (c *Client) Explain(ctx context.Context, q QueryCommand) (*ExplainResult, error) {
	var r ExplainResult
	return &r, c.call(ctx, ActionExplainQuery, q, &r)
}

// streamReader is a DoGet stream as an array.RecordReader whose errors are
// errdefs errors and whose Release ends the call.
type streamReader struct {
	r      *flight.Reader
	cancel context.CancelFunc
	c      *Client
	refs   int64
}

func (s *streamReader) Retain() { s.refs++ }
func (s *streamReader) Release() {
	if s.refs > 0 {
		s.refs--
		return
	}
	s.cancel()
	s.r.Release()
}
func (s *streamReader) Schema() *arrow.Schema          { return s.r.Schema() }
func (s *streamReader) Next() bool                     { return s.r.Next() }
func (s *streamReader) RecordBatch() arrow.RecordBatch { return s.r.RecordBatch() }
func (s *streamReader) Record() arrow.RecordBatch      { return s.r.RecordBatch() }
func (s *streamReader) Err() error {
	err := s.r.Err()
	if err == nil {
		return nil
	}
	return s.c.err(err)
}
