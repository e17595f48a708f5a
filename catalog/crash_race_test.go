//go:build race

package catalog_test

// Under the race detector each child is several times slower; the full 200
// kill points run in the plain (non-race) test pass of scripts/test.sh,
// whose race step skips this test (go test -race ./catalog alone runs
// these 25).
const crashPoints = 25

// crashSlowdown scales the child's run time before a kill.
const crashSlowdown = 4
