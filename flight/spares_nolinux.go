//go:build unix && !linux

package flight

import (
	"errors"
	"os"
)

// lease cannot tell here: no file becomes a spare.
func lease(int) bool { return false }

// preallocate is left to the writes here.
func preallocate(*os.File, int64) error { return nil }

// allocate: no reserve of spares here.
func allocate(*os.File, int64) error { return errors.ErrUnsupported }
