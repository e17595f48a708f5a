// Package suggest finds the likely intended word for a mistyped one, for
// "did you mean …?" hints in errors.
package suggest

import "sort"

// Closest returns the candidate nearest to name by edit distance, or "" if
// none is within maxDist. maxDist <= 0 means the default: a third of name's
// length, and at least 2.
func Closest(name string, candidates []string, maxDist int) string {
	if maxDist <= 0 {
		maxDist = max(2, len(name)/3)
	}
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	best, bestD := "", maxDist+1
	for _, c := range sorted {
		if d := Distance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// Distance is the Levenshtein distance between a and b. Strings over 300
// bytes are never close: their distance is reported as 1<<20.
func Distance(a, b string) int {
	if len(a) > 300 || len(b) > 300 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
