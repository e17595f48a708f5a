package suggest

import "testing"

func TestClosest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		cands []string
		max   int
		want  string
	}{
		{"mian", []string{"main", "alice.dev"}, 0, "main"},
		{"sales.transaction", []string{"sales.transactions", "sales.customers"}, 0, "sales.transactions"},
		{"zzz", []string{"main"}, 0, ""},
		{"brnch", []string{"branch", "tag"}, 2, "branch"},
		{"x", nil, 0, ""},
	}
	for _, tc := range cases {
		if got := Closest(tc.name, tc.cands, tc.max); got != tc.want {
			t.Errorf("Closest(%q, %v) = %q, want %q", tc.name, tc.cands, got, tc.want)
		}
	}
}
