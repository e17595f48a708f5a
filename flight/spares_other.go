//go:build !unix

package flight

import "io/fs"

// soleLinkOfOwn cannot tell here: no file becomes a spare.
func soleLinkOfOwn(fs.FileInfo) bool { return false }

func sameDevice(a, b string) bool { return false }
