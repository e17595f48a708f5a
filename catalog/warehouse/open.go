package warehouse

import (
	"context"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Config names a warehouse.
type Config struct {
	// URI is file:///path (or an absolute path) or s3://bucket/prefix.
	// Required.
	URI string
	// LocationRoot is, for a local warehouse, the directory its table
	// metadata was written with when that differs from URI's (the data
	// directory moved). Default: URI's directory.
	LocationRoot string
	// S3 configures an s3:// warehouse.
	S3 S3Options
}

// Open returns the Storage of cfg. It does not contact S3.
func Open(ctx context.Context, cfg Config) (Storage, error) {
	if cfg.URI == "" {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "no warehouse is set")
	}
	loc, err := ParseLocation(cfg.URI)
	if err != nil {
		return nil, err
	}
	if loc.Scheme == "s3" {
		return NewS3(ctx, loc, cfg.S3)
	}
	return NewLocal(loc.Path, cfg.LocationRoot)
}
