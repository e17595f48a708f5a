package flight

import (
	"context"
	"encoding/json"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Query runs q on the server: GetFlightInfo plans and starts it (errors
// in the SQL come back here), DoGet streams its batches. Read the reader
// to its end or stop early, then Release it: that ends the stream.
//
// The client follows an endpoint located at a worker of a fleet
// (q.Locations is set for it). When that worker cannot be read from (it
// stopped between GetFlightInfo and DoGet) the client asks once more,
// avoiding it: the control plane places the query elsewhere or runs it.
func (c *Client) Query(ctx context.Context, q QueryCommand) (array.RecordReader, error) {
	q.Locations = true
	r, failed, err := c.query(ctx, q)
	if failed == "" {
		return r, err
	}
	q.Avoid = append(q.Avoid, failed)
	r, _, err = c.query(ctx, q)
	return r, err
}

// query runs q once; failed is the location it could not read from ("":
// none, or the control plane itself).
func (c *Client) query(ctx context.Context, q QueryCommand) (_ array.RecordReader, failed string, _ error) {
	cmd, err := json.Marshal(q)
	if err != nil {
		return nil, "", err
	}
	info, err := c.fc.GetFlightInfo(c.callContext(ctx), &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
	if err != nil {
		return nil, "", c.err(err)
	}
	if len(info.GetEndpoint()) == 0 {
		return nil, "", errdefs.New(errdefs.ErrInternal, "the server answered the query with no endpoint")
	}
	ep := info.GetEndpoint()[0]
	from, err := c.endpoint(ep)
	if err != nil {
		return nil, "", err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := func() {
		cancel()
		if from != c {
			from.Close()
		}
	}
	// fail is err, with the location to avoid when a worker failed.
	fail := func(err error) (array.RecordReader, string, error) {
		done()
		err = from.err(err)
		if from != c && (errdefs.Is(err, errdefs.ErrUnavailable) || errdefs.Is(err, errdefs.ErrNotFound)) && ctx.Err() == nil {
			return nil, from.Addr(), err
		}
		return nil, "", err
	}
	stream, err := from.fc.DoGet(from.callContext(sctx), ep.GetTicket())
	if err != nil {
		return fail(err)
	}
	ms, err := newMessageStream(stream)
	if err != nil {
		return fail(err)
	}
	r, err := ipc.NewReaderFromMessageReader(ms) // r releases ms
	if err != nil {
		return fail(err)
	}
	return &streamReader{r: r, cancel: done, c: from}, "", nil
}

// endpoint is the client of the server that holds an endpoint's rows:
// c itself, or for an endpoint located elsewhere (a worker of a fleet),
// a new connection to its first location. The ticket is what admits the
// caller there: the API key is not sent to another server.
func (c *Client) endpoint(ep *flight.FlightEndpoint) (*Client, error) {
	locs := ep.GetLocation()
	if len(locs) == 0 || locs[0].GetUri() == "" || locs[0].GetUri() == flight.LocationReuseConnection {
		return c, nil
	}
	return Dial(locs[0].GetUri(), DialOptions{CAFile: c.opts.CAFile, Author: c.opts.Author})
}

// Explain plans q on the server without running it.
func (c *Client) Explain(ctx context.Context, q QueryCommand) (*ExplainResult, error) {
	var r ExplainResult
	return &r, c.call(ctx, ActionExplainQuery, q, &r)
}

// streamReader is a DoGet stream as an array.RecordReader whose errors are
// errdefs errors and whose Release ends the call.
type streamReader struct {
	r      *ipc.Reader
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
