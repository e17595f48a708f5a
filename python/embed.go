// Package python embeds the lakehouse Python SDK (python/lakehouse), so the
// binary can place it into function environments without a package index.
package python

import (
	"embed"
	"io/fs"
)

//go:embed lakehouse/*.py
var sdk embed.FS

// SDK is the lakehouse package: lakehouse/__init__.py, lakehouse/expectations.py.
func SDK() fs.FS { return sdk }
