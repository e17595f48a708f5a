package bench

import (
	"fmt"
	"slices"

	"github.com/lakehouse-dev/lakehouse/internal/benchtable"
)

// Table is a printed comparison: one row a measure, ours beside the
// baseline measured in the same run, and their ratio.
type Table struct {
	Title string
	Rows  [][4]string // measure, ours, baseline, ratio
	Notes []string
}

func (t Table) String() string {
	return benchtable.Format(t.Title, [4]string{"", "arrow ipc, mmap (ours)", "parquet (baseline)", "baseline/ours"}, t.Rows, t.Notes)
}

// Table shows the medians of h: inside the child, and from the Go side.
func (h Handoff) Table(d *Dataset) Table {
	read := func(l Load) float64 { return l.ReadSeconds }
	readSum := func(l Load) float64 { return l.ReadSeconds + l.SumSeconds }
	startToLoad := func(l Load) float64 { return l.StartToLoad.Seconds() }
	allocated := func(l Load) float64 { return float64(l.Allocated) }
	row := func(name string, f func(Load) float64, format func(float64) string) [4]string {
		ours, base := median(h.IPC, f), median(h.Parquet, f)
		return [4]string{name, format(ours), format(base), fmtRatio(base, ours)}
	}
	return Table{
		Title: fmt.Sprintf("handoff of a %s table (%d rows × 4 columns) to a child Python process; median over %d children per mechanism, one at a time",
			fmtBytes(d.ArrowBytes), d.Rows, len(h.IPC)),
		Rows: [][4]string{
			row("child: table in hand (perf_counter around the read)", read, fmtSeconds),
			row("child: read + pc.sum of every column (touches all pages)", readSum, fmtSeconds),
			row("Go: process start -> table in hand", startToLoad, fmtSeconds),
			row("child: pa.total_allocated_bytes() when ready", allocated, func(v float64) string { return fmtBytes(int64(v)) }),
		},
		Notes: []string{
			fmt.Sprintf("ours: pa.ipc.open_file(pa.memory_map(p)).read_all() of a %s IPC file in /dev/shm (tmpfs: always in memory)", fmtBytes(d.IPCSize)),
			fmt.Sprintf("baseline: pyarrow.parquet.read_table(p) of a %s snappy Parquet file under the temp dir, read once before timing so its pages are in the page cache", fmtBytes(d.ParquetSize)),
			"children alternate between the two; every child checked the row count and the sum of every column",
		},
	}
}

// ReadRatio is the median Parquet read time over the median IPC read time.
func (h Handoff) ReadRatio() float64 {
	read := func(l Load) float64 { return l.ReadSeconds }
	return median(h.Parquet, read) / median(h.IPC, read)
}

// Totals sums each group's PSS. The Parquet total is scaled to Children
// children when fewer ran; scaled reports whether it was.
func (f FanOut) Totals() (idle, ipc, parquet PSS, scaled bool) {
	idle, ipc, parquet = sumPSS(f.Idle), sumPSS(f.IPC), sumPSS(f.Parquet)
	if n := len(f.Parquet); n > 0 && n < f.Children {
		parquet = PSS{
			Total: parquet.Total * int64(f.Children) / int64(n),
			Anon:  parquet.Anon * int64(f.Children) / int64(n),
			File:  parquet.File * int64(f.Children) / int64(n),
			Shmem: parquet.Shmem * int64(f.Children) / int64(n),
		}
		scaled = true
	}
	return idle, ipc, parquet, scaled
}

// Table shows the summed PSS of each group.
func (f FanOut) Table(d *Dataset) Table {
	idle, ipc, pq, scaled := f.Totals()
	n := f.Children
	pqLabel := func(v int64) string {
		if scaled {
			return fmt.Sprintf("%s (%d measured x%d/%d)", fmtBytes(v), len(f.Parquet), n, len(f.Parquet))
		}
		return fmtBytes(v)
	}
	row := func(name string, ours, base int64) [4]string {
		return [4]string{name, fmtBytes(ours), pqLabel(base), fmtRatio(float64(base), float64(ours))}
	}
	notes := []string{
		fmt.Sprintf("PSS from /proc/PID/smaps_rollup once all %d children are ready (table loaded, pc.sum over every column); shared pages count once in the sum", n),
	}
	if scaled {
		notes = append(notes, fmt.Sprintf("baseline: one Parquet child peaks at %s RSS and MemAvailable was %s, so %d ran with %s kept free; their sums are scaled to %d (labelled)",
			fmtBytes(f.ParquetPeak), fmtBytes(f.MemAvailable), len(f.Parquet), fmtBytes(parquetReserve), n))
	}
	return Table{
		Title: fmt.Sprintf("fan-out of one %s table to %d child Python processes holding it at once: PSS summed over the children", fmtBytes(d.ArrowBytes), n),
		Rows: [][4]string{
			{"1 idle child alone (python + pyarrow imported)", fmtBytes(f.IdleOne.Total), "", ""},
			{fmt.Sprintf("%d idle children at once", n), fmtBytes(idle.Total), fmtBytes(idle.Total), ""},
			row(fmt.Sprintf("%d children holding the table", n), ipc.Total, pq.Total),
			{"  of which Pss_Shmem (mapped /dev/shm)", fmtBytes(ipc.Shmem), pqLabel(pq.Shmem), ""},
			{"  of which Pss_Anon (private heap)", fmtBytes(ipc.Anon), pqLabel(pq.Anon), ""},
			row(fmt.Sprintf("the table's share (minus %d idle children)", n), ipc.Total-idle.Total, pq.Total-idle.Total),
		},
		Notes: notes,
	}
}

func sumPSS(ps []PSS) PSS {
	var t PSS
	for _, p := range ps {
		t = t.add(p)
	}
	return t
}

func median(ls []Load, f func(Load) float64) float64 {
	if len(ls) == 0 {
		return 0
	}
	v := make([]float64, len(ls))
	for i, l := range ls {
		v[i] = f(l)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func fmtSeconds(s float64) string {
	switch {
	case s < 1e-3:
		return fmt.Sprintf("%.0f µs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.1f ms", s*1e3)
	default:
		return fmt.Sprintf("%.2f s", s)
	}
}

// fmtBytes uses decimal units, as the goals are stated (1.3 GB).
func fmtBytes(n int64) string {
	switch v := float64(n); {
	case v >= 1e9 || v <= -1e9:
		return fmt.Sprintf("%.2f GB", v/1e9)
	case v >= 1e6 || v <= -1e6:
		return fmt.Sprintf("%.1f MB", v/1e6)
	default:
		return fmt.Sprintf("%.0f kB", v/1e3)
	}
}

func fmtRatio(base, ours float64) string {
	switch r := base / ours; {
	case ours <= 0:
		return "-"
	case r >= 100:
		return fmt.Sprintf("%.0fx", r)
	default:
		return fmt.Sprintf("%.1fx", r)
	}
}
