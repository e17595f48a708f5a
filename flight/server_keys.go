package flight

// Keys manages the server's API keys for the key actions.
type Keys interface{}

// registerKeys adds the key actions.
func (s *Server) registerKeys() {}
