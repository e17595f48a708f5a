package flight

import (
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"google.golang.org/grpc/status"
)

// checkedService is the service with every DoPut's messages checked
// (arrowipc.Checker) before anything reads them: uploads, and Flight
// SQL's parameter bindings and ingests, which arrow-go reads before
// handing them on. One crafted schema message would otherwise crash the
// server (arrow-go allocates what its counts say).
type checkedService struct {
	flight.FlightServer
}

func (s checkedService) DoPut(stream flight.FlightService_DoPutServer) error {
	return s.FlightServer.DoPut(&checkedPut{FlightService_DoPutServer: stream, checker: arrowipc.Checker{Name: "DoPut", Dictionaries: true, AnyType: true}})
}

// checkedPut is a DoPut stream whose Recv checks each message that
// carries Arrow data and ends the stream at the first that is not valid.
type checkedPut struct {
	flight.FlightService_DoPutServer
	checker arrowipc.Checker
	err     error
}

func (c *checkedPut) Recv() (*flight.FlightData, error) {
	if c.err != nil {
		return nil, c.err
	}
	fd, err := c.FlightService_DoPutServer.Recv()
	if err != nil {
		return nil, err
	}
	if len(fd.DataHeader) > 0 || len(fd.DataBody) > 0 {
		if _, err := c.checker.Check(fd.DataHeader, fd.DataBody, int64(len(fd.DataBody))); err != nil {
			c.err = checkError{err}
			return nil, c.err
		}
	}
	return fd, nil
}

// checkError is a message the checker refused: its text as it is, for
// the handler that wraps it, and its gRPC status (InvalidArgument) for one
// that returns it as it comes (arrow-go's Flight SQL server).
type checkError struct{ err error }

func (e checkError) Error() string { return e.err.Error() }
func (e checkError) Unwrap() error { return e.err }
func (e checkError) GRPCStatus() *status.Status {
	return status.Convert(ToStatus(e.err))
}
