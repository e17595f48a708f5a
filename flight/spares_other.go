//go:build !unix

package flight

import (
	"errors"
	"os"
)

// unshared cannot tell here: no file becomes a spare.
func unshared(string) bool { return false }

func sameDevice(a, b string) bool { return false }

// preallocate is left to the writes here.
func preallocate(*os.File, int64) error { return nil }

// allocate: no reserve of spares here.
func allocate(*os.File, int64) error { return errors.ErrUnsupported }
