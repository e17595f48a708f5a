//go:build race

package arrowipc

const raceEnabled = true
