//go:build race

package query_test

import "testing"

// TestStreamingBoundedMemory: under the race detector (10x slower), 1M rows.
func TestStreamingBoundedMemory(t *testing.T) { testStreaming(t, 1_000_000) }
