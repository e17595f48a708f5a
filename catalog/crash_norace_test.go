//go:build !race

package catalog_test

// crashPoints is how many times TestCrashSafety kills its child.
const crashPoints = 200

// crashSlowdown scales the child's run time before a kill.
const crashSlowdown = 1
