package flight

// Runs runs pipelines for the server's run actions.
type Runs interface{}

// registerRuns adds the run actions.
func (s *Server) registerRuns() {}
