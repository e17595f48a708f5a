package scancache

import "sort"

// span is the half-open byte range [Off, Off+Len) of an object.
type span struct {
	Off int64 `json:"off"`
	Len int64 `json:"len"`
}

func (s span) end() int64 { return s.Off + s.Len }

// normalize sorts spans and merges those that overlap or touch. Empty spans
// are dropped. The result is a new slice.
func normalize(in []span) []span {
	out := make([]span, 0, len(in))
	for _, s := range in {
		if s.Len > 0 {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Off < out[j].Off })
	merged := out[:0]
	for _, s := range out {
		if n := len(merged); n > 0 && s.Off <= merged[n-1].end() {
			if e := s.end(); e > merged[n-1].end() {
				merged[n-1].Len = e - merged[n-1].Off
			}
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// subtract returns the parts of want (normalized) that no span of have
// (normalized) covers.
func subtract(want, have []span) []span {
	var out []span
	j := 0
	for _, w := range want {
		off, end := w.Off, w.end()
		for j < len(have) && have[j].end() <= off {
			j++
		}
		for k := j; k < len(have) && have[k].Off < end && off < end; k++ {
			if have[k].Off > off {
				out = append(out, span{off, have[k].Off - off})
			}
			if e := have[k].end(); e > off {
				off = e
			}
		}
		if off < end {
			out = append(out, span{off, end - off})
		}
	}
	return out
}

// total is the number of bytes set covers (set normalized).
func total(set []span) int64 {
	var n int64
	for _, s := range set {
		n += s.Len
	}
	return n
}
