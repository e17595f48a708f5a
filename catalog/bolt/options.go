package bolt

import (
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// DefaultTimeout is how long Open waits, by default, for the file lock held
// by another process.
const DefaultTimeout = 3 * time.Second

// Options configure Open. The zero value is the production configuration.
type Options struct {
	// Timeout is how long Open waits for the file lock when another process
	// holds the file. When it expires Open returns an errdefs.ErrUnavailable
	// error. Zero means DefaultTimeout; negative values are invalid.
	Timeout time.Duration

	// NoSync skips fdatasync after each commit. A crash (of the machine, not
	// only of the process) can then lose or corrupt recent commits, so it is
	// only for tests and benchmarks that throw the file away. Default false.
	NoSync bool

	// ReadOnly opens the file with a shared lock, so several read-only
	// processes may use it at once, but none while a writer holds it. Update
	// then fails with errdefs.ErrFailedPrecondition. The file must exist and
	// be at the current format version. Default false.
	ReadOnly bool
}

// Validate reports whether o is usable, with an errdefs.ErrInvalidArgument
// error if not.
func (o Options) Validate() error {
	if o.Timeout < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "catalog store: lock timeout %s is negative", o.Timeout)
	}
	return nil
}

// withDefaults returns o with zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}
