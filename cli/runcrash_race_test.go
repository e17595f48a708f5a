//go:build race

package cli

// raceBuild is true when the tests run under the race detector.
const raceBuild = true
