package runner

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
)

// The invocation reaches the runner as Python marshal data, hex-encoded:
// marshal.loads and bytes.fromhex are built into the interpreter, where
// importing json would cost the function start ~8 ms (re, enum, ...).

// encodeMarshal renders v (nil, bool, integers, float64, string, slices
// and string-keyed maps of those) in Python's marshal format.
func encodeMarshal(v any) (string, error) {
	var b []byte
	b, err := appendMarshal(b, v)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func appendMarshal(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, 'N'), nil
	case bool:
		if x {
			return append(b, 'T'), nil
		}
		return append(b, 'F'), nil
	case int:
		return appendInt(b, int64(x)), nil
	case int32:
		return appendInt(b, int64(x)), nil
	case int64:
		return appendInt(b, x), nil
	case float64:
		b = append(b, 'g')
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)), nil
	case float32:
		b = append(b, 'g')
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(x))), nil
	case string:
		b = append(b, 'u')
		b = binary.LittleEndian.AppendUint32(b, uint32(len(x)))
		return append(b, x...), nil
	case []string:
		b = append(b, '[')
		b = binary.LittleEndian.AppendUint32(b, uint32(len(x)))
		for _, s := range x {
			b, _ = appendMarshal(b, s)
		}
		return b, nil
	case []any:
		b = append(b, '[')
		b = binary.LittleEndian.AppendUint32(b, uint32(len(x)))
		var err error
		for _, e := range x {
			if b, err = appendMarshal(b, e); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		var err error
		for _, k := range keys {
			b, _ = appendMarshal(b, k)
			if b, err = appendMarshal(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '0'), nil
	default:
		return nil, fmt.Errorf("value %v of type %T cannot be passed to Python", v, v)
	}
}

func appendInt(b []byte, n int64) []byte {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		b = append(b, 'i')
		return binary.LittleEndian.AppendUint32(b, uint32(int32(n)))
	}
	// A long: base-2^15 digits, least significant first; the sign is the
	// sign of the digit count.
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-(n + 1)) + 1
	}
	var digits []uint16
	for u > 0 {
		digits = append(digits, uint16(u&0x7fff))
		u >>= 15
	}
	cnt := int32(len(digits))
	if neg {
		cnt = -cnt
	}
	b = append(b, 'l')
	b = binary.LittleEndian.AppendUint32(b, uint32(cnt))
	for _, d := range digits {
		b = binary.LittleEndian.AppendUint16(b, d)
	}
	return b
}
