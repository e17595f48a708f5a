//go:build race

package iceberg

const raceEnabled = true
