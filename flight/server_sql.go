package flight

import (
	"context"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// sqlTypePrefix starts the type URL of every Flight SQL command and
// ticket (a protobuf Any).
const sqlTypePrefix = "type.googleapis.com/arrow.flight.protocol.sql."

// sqlActions are the action types Options.SQL answers: Flight SQL's own
// and the session options its clients set (ADBC's current catalog).
var sqlActions = map[string]bool{
	flightsql.CreatePreparedStatementActionType:     true,
	flightsql.ClosePreparedStatementActionType:      true,
	flightsql.CreatePreparedSubstraitPlanActionType: true,
	flightsql.BeginTransactionActionType:            true,
	flightsql.EndTransactionActionType:              true,
	flightsql.BeginSavepointActionType:              true,
	flightsql.EndSavepointActionType:                true,
	flightsql.CancelQueryActionType:                 true,
	flight.CancelFlightInfoActionType:               true,
	flight.RenewFlightEndpointActionType:            true,
	flight.SetSessionOptionsActionType:              true,
	flight.GetSessionOptionsActionType:              true,
	flight.CloseSessionActionType:                   true,
}

// service is what the gRPC server serves: s, or s with the Flight SQL
// calls going to Options.SQL, their DoPut messages checked.
func (s *Server) service() flight.FlightServer {
	if s.opts.SQL == nil {
		return checkedService{s}
	}
	return checkedService{&sqlDispatch{Server: s, sql: s.opts.SQL}}
}

// sqlDispatch sends Flight SQL calls to sql and the rest to Server. The
// interceptors of the gRPC server wrap both: a Flight SQL call carries
// the caller's principal like any other.
type sqlDispatch struct {
	*Server
	sql flight.FlightServer
}

// isSQL reports whether a command or ticket is a Flight SQL message. The
// server's own commands and tickets are JSON, which never decodes as a
// protobuf Any of that type.
func isSQL(b []byte) bool {
	var a anypb.Any
	if err := proto.Unmarshal(b, &a); err != nil {
		return false
	}
	return strings.HasPrefix(a.GetTypeUrl(), sqlTypePrefix)
}

func (d *sqlDispatch) GetFlightInfo(ctx context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	if isSQL(desc.GetCmd()) {
		return d.sql.GetFlightInfo(ctx, desc)
	}
	return d.Server.GetFlightInfo(ctx, desc)
}

func (d *sqlDispatch) PollFlightInfo(ctx context.Context, desc *flight.FlightDescriptor) (*flight.PollInfo, error) {
	if isSQL(desc.GetCmd()) {
		return d.sql.PollFlightInfo(ctx, desc)
	}
	return d.Server.PollFlightInfo(ctx, desc)
}

func (d *sqlDispatch) GetSchema(ctx context.Context, desc *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	if isSQL(desc.GetCmd()) {
		return d.sql.GetSchema(ctx, desc)
	}
	return d.Server.GetSchema(ctx, desc)
}

func (d *sqlDispatch) DoGet(t *flight.Ticket, stream flight.FlightService_DoGetServer) error {
	if isSQL(t.GetTicket()) {
		return d.sql.DoGet(t, stream)
	}
	return d.Server.DoGet(t, stream)
}

func (d *sqlDispatch) DoAction(a *flight.Action, stream flight.FlightService_DoActionServer) error {
	if sqlActions[a.GetType()] {
		return d.sql.DoAction(a, stream)
	}
	return d.Server.DoAction(a, stream)
}

// DoPut reads the first message to see whose descriptor it carries, and
// hands the stream, that message first, to the one it is for.
func (d *sqlDispatch) DoPut(stream flight.FlightService_DoPutServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	replay := &replayPut{FlightService_DoPutServer: stream, first: first}
	if isSQL(first.GetFlightDescriptor().GetCmd()) {
		return d.sql.DoPut(replay)
	}
	return d.Server.DoPut(replay)
}

// replayPut is a DoPut stream whose first Recv returns a message read
// before.
type replayPut struct {
	flight.FlightService_DoPutServer
	first *flight.FlightData
}

func (r *replayPut) Recv() (*flight.FlightData, error) {
	if m := r.first; m != nil {
		r.first = nil
		return m, nil
	}
	return r.FlightService_DoPutServer.Recv()
}
