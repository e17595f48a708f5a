// Package startgc keeps the garbage collector off while the binary's
// packages initialize, and main turns it back on.
//
// Package initialization allocates about 38 MB that all stays live (most
// of it iceberg-go's substrait package parsing Substrait's YAML function
// catalog in its init), and the collector runs several times during it for
// nothing: about a quarter of the start time of every command. Go
// initializes packages in import-path order, each once its imports are
// done; this package imports only the runtime, and its path sorts before
// github.com/substrait-io/..., which iceberg-go's substrait package needs,
// so it runs before that work.
package startgc

import "runtime/debug"

// percent is the collector's setting from GOGC (100 by default).
var percent = debug.SetGCPercent(-1)

// Restore turns the collector back on with the setting GOGC asked for.
func Restore() { debug.SetGCPercent(percent) }
