package flightsql

import (
	"context"
	"strings"
	"time"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	fsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// MethodPrefix starts the method label of every Flight SQL call in the
// server's metrics ("sql.GetFlightInfo", "sql.CreatePreparedStatement"),
// apart from the server's own methods.
const MethodPrefix = "sql."

// metered is a Flight SQL service that counts its calls in metrics, as
// the server counts its own: each call by method (MethodPrefix and the
// Flight method, or the action type), each failure by method and error
// class, and the time each statement's rows took to stream as a query.
type metered struct {
	arrowflight.FlightServer
	metrics *flight.Metrics
}

// count records a call that ended with err (a gRPC status, or nil). What
// Flight SQL has and this server does not do (Unimplemented) is classed as
// an invalid argument, as an unknown action of the server's is.
func (m *metered) count(method string, err error) {
	if st, ok := grpcstatus.FromError(err); ok && st.Code() == codes.Unimplemented {
		err = errdefs.New(errdefs.ErrInvalidArgument, "%s", st.Message())
	} else {
		err = flight.FromStatus(err, "")
	}
	m.metrics.Request(MethodPrefix+method, err)
}

func (m *metered) GetFlightInfo(ctx context.Context, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	info, err := m.FlightServer.GetFlightInfo(ctx, desc)
	m.count("GetFlightInfo", err)
	return info, err
}

func (m *metered) PollFlightInfo(ctx context.Context, desc *arrowflight.FlightDescriptor) (*arrowflight.PollInfo, error) {
	info, err := m.FlightServer.PollFlightInfo(ctx, desc)
	m.count("PollFlightInfo", err)
	return info, err
}

func (m *metered) GetSchema(ctx context.Context, desc *arrowflight.FlightDescriptor) (*arrowflight.SchemaResult, error) {
	res, err := m.FlightServer.GetSchema(ctx, desc)
	m.count("GetSchema", err)
	return res, err
}

// DoGet counts the call; a statement's (its ticket a
// TicketStatementQuery) is a query, timed from its start to its last row.
func (m *metered) DoGet(t *arrowflight.Ticket, stream arrowflight.FlightService_DoGetServer) error {
	start, statement := time.Now(), isStatementTicket(t.GetTicket())
	if statement {
		m.metrics.QueryStarted()
	}
	err := m.FlightServer.DoGet(t, stream)
	m.count("DoGet", err)
	if statement {
		m.metrics.QueryStreamed(time.Since(start))
	}
	return err
}

func (m *metered) DoPut(stream arrowflight.FlightService_DoPutServer) error {
	err := m.FlightServer.DoPut(stream)
	m.count("DoPut", err)
	return err
}

func (m *metered) DoAction(a *arrowflight.Action, stream arrowflight.FlightService_DoActionServer) error {
	err := m.FlightServer.DoAction(a, stream)
	m.count(actionLabel(a.GetType()), err)
	return err
}

// actionLabel is the method label of an action: its type when Flight SQL
// (or Flight's session and cancel actions) defines it, else DoAction, so
// that a client cannot make up labels.
func actionLabel(typ string) string {
	switch typ {
	case fsql.CreatePreparedStatementActionType, fsql.ClosePreparedStatementActionType,
		fsql.CreatePreparedSubstraitPlanActionType, fsql.CancelQueryActionType,
		fsql.BeginSavepointActionType, fsql.BeginTransactionActionType,
		fsql.EndTransactionActionType, fsql.EndSavepointActionType,
		arrowflight.CancelFlightInfoActionType, arrowflight.RenewFlightEndpointActionType,
		arrowflight.SetSessionOptionsActionType, arrowflight.GetSessionOptionsActionType,
		arrowflight.CloseSessionActionType:
		return typ
	}
	return "DoAction"
}

// isStatementTicket reports whether a ticket is a statement's (of a
// statement or a prepared statement); those of metadata calls are their
// commands.
func isStatementTicket(b []byte) bool {
	var a anypb.Any
	if err := proto.Unmarshal(b, &a); err != nil {
		return false
	}
	return strings.HasSuffix(a.GetTypeUrl(), ".TicketStatementQuery")
}
