//go:build !linux

package scancache

import "syscall"

// ctimeNs is 0 where the field is spelled differently: the stamp then
// rests on size and mtime.
func ctimeNs(*syscall.Stat_t) int64 { return 0 }
