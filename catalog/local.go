package catalog

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// LocalOptions configure a Local service.
type LocalOptions struct {
	// Author is recorded on commits whose CommitOptions name none.
	// Default: $LAKEHOUSE_USER, else the OS user name, else "lakehouse".
	Author string
	// Now returns the commit time. Default: time.Now in UTC.
	Now func() time.Time
	// MaxRetries bounds optimistic retries of merges when the target branch
	// moves during the merge. Default 5.
	MaxRetries int
}

// Validate checks the options and fills in defaults.
func (o *LocalOptions) Validate() error {
	if o.Author == "" {
		o.Author = DefaultAuthor()
	}
	if o.Now == nil {
		o.Now = func() time.Time { return time.Now().UTC() }
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 5
	}
	if o.MaxRetries < 0 {
		return fmt.Errorf("MaxRetries %d is negative: %w", o.MaxRetries, errdefs.ErrInvalidArgument)
	}
	return nil
}

// DefaultAuthor is $LAKEHOUSE_USER, else the OS user name, else "lakehouse".
func DefaultAuthor() string {
	if u := os.Getenv("LAKEHOUSE_USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "lakehouse"
}

// Local is the in-process catalog service: versioning rules over a Store,
// table data through a TableFormat.
type Local struct {
	store  Store
	format TableFormat
	opts   LocalOptions
}

var _ Service = (*Local)(nil)

// NewLocal returns a service over store and format. On a new store it
// creates main with a first commit holding the default namespace.
func NewLocal(ctx context.Context, store Store, format TableFormat, opts LocalOptions) (*Local, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := &Local{store: store, format: format, opts: opts}
	if err := l.bootstrap(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Close closes the store.
func (l *Local) Close() error { return l.store.Close() }
