//go:build !(linux && cgo)

package process

// haveInit: without cgo this binary cannot serve as the function's init
// (it must run before the Go runtime), so functions are not isolated.
const haveInit = false
