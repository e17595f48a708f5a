//go:build !unix

package flight

// unshared cannot tell here: no file becomes a spare.
func unshared(string) bool { return false }

func sameDevice(a, b string) bool { return false }
