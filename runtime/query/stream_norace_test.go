//go:build !race

package query_test

import "testing"

// TestStreamingBoundedMemory: 10M rows to CSV and Parquet in bounded memory.
func TestStreamingBoundedMemory(t *testing.T) { testStreaming(t, 10_000_000) }
