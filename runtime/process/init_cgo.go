//go:build linux && cgo

package process

import "C" // init_linux.c: the function's init

// haveInit: this binary can serve as the function's init.
const haveInit = true
