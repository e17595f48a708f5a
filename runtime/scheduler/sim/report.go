package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/benchtable"
)

// Percentile returns the p-th percentile (0-100) of xs, nearest rank.
func Percentile[T time.Duration | float64](xs []T, p float64) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Mean returns the mean of xs.
func Mean[T time.Duration | float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += float64(x)
	}
	return T(sum / float64(len(xs)))
}

// Table is a printed comparison of the scheduler against the FIFO
// baseline measured in the same run.
type Table struct {
	Title string
	Rows  [][4]string // measure, ours, baseline, baseline/ours
	Notes []string
}

// Row compares one measure; format prints a value.
func Row[T time.Duration | float64](name string, ours, base T, format func(T) string) [4]string {
	ratio := "-"
	if ours > 0 {
		ratio = fmt.Sprintf("%.2fx", float64(base)/float64(ours))
	}
	return [4]string{name, format(ours), format(base), ratio}
}

// Seconds formats a duration in seconds, three significant digits.
func Seconds(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func (t Table) String() string {
	return benchtable.Format(t.Title, [4]string{"", "scheduler (ours)", "FIFO (baseline)", "baseline/ours"}, t.Rows, t.Notes)
}
