package flightsql

import (
	"context"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	fsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// writeHint says where writes go instead.
const writeHint = "Flight SQL here is read-only: write on a branch with `lakehouse table import`, " +
	"a pipeline run or the Iceberg REST catalog, then query it here at that branch"

func readOnly(what string) error {
	return status(errdefs.WithHint(errdefs.ErrInvalidArgument, writeHint, "%s: the lakehouse Flight SQL server is read-only", what))
}

func unimplemented(what, hint string) error {
	return grpcstatus.Errorf(codes.Unimplemented, "%s are not supported by the lakehouse Flight SQL server; %s", what, hint)
}

func noTransactions() error {
	return unimplemented("transactions", "run each statement on its own: queries read one commit of a ref, consistently")
}

func noSubstrait() error {
	return unimplemented("Substrait plans", "send SQL")
}

func (s *Server) DoPutCommandStatementUpdate(context.Context, fsql.StatementUpdate) (int64, error) {
	return 0, readOnly("statement update refused")
}

func (s *Server) DoPutPreparedStatementUpdate(context.Context, fsql.PreparedStatementUpdate, arrowflight.MessageReader) (int64, error) {
	return 0, readOnly("prepared update refused")
}

func (s *Server) DoPutCommandStatementIngest(context.Context, fsql.StatementIngest, arrowflight.MessageReader) (int64, error) {
	return 0, readOnly("bulk ingest refused")
}

func (s *Server) DoPutCommandSubstraitPlan(context.Context, fsql.StatementSubstraitPlan) (int64, error) {
	return 0, noSubstrait()
}

func (s *Server) GetFlightInfoSubstraitPlan(context.Context, fsql.StatementSubstraitPlan, *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return nil, noSubstrait()
}

func (s *Server) GetSchemaSubstraitPlan(context.Context, fsql.StatementSubstraitPlan, *arrowflight.FlightDescriptor) (*arrowflight.SchemaResult, error) {
	return nil, noSubstrait()
}

func (s *Server) CreatePreparedSubstraitPlan(context.Context, fsql.ActionCreatePreparedSubstraitPlanRequest) (fsql.ActionCreatePreparedStatementResult, error) {
	return fsql.ActionCreatePreparedStatementResult{}, noSubstrait()
}

func (s *Server) BeginTransaction(context.Context, fsql.ActionBeginTransactionRequest) ([]byte, error) {
	return nil, noTransactions()
}

func (s *Server) BeginSavepoint(context.Context, fsql.ActionBeginSavepointRequest) ([]byte, error) {
	return nil, noTransactions()
}

func (s *Server) EndTransaction(context.Context, fsql.ActionEndTransactionRequest) error {
	return noTransactions()
}

func (s *Server) EndSavepoint(context.Context, fsql.ActionEndSavepointRequest) error {
	return noTransactions()
}
