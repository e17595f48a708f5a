//go:build !race

package catalog_test

// crashPoints is how many times TestCrashSafety kills its child.
const crashPoints = 200
