package flight

// registerImport adds the import action (its files come with DoPut).
func (s *Server) registerImport() {}
