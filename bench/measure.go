package bench

import (
	"context"
	"fmt"
)

// Mechanisms, as the child script names them.
const (
	modeIdle    = "idle"    // interpreter + pyarrow imported, no table
	modeIPC     = "ipc"     // ours: memory-mapped Arrow IPC file
	modeParquet = "parquet" // baseline: pyarrow.parquet.read_table
)

// Handoff holds one child's Load per repetition and mechanism.
type Handoff struct {
	IPC, Parquet []Load
}

// MeasureHandoff starts reps children per mechanism, one at a time and
// alternating, each loading d once, and checks what each one saw. The
// Parquet file is read once first so the baseline reads from the page cache.
func MeasureHandoff(ctx context.Context, python string, d *Dataset, reps int) (Handoff, error) {
	var h Handoff
	if err := d.WarmParquet(); err != nil {
		return h, err
	}
	for i := range reps {
		order := []string{modeIPC, modeParquet}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, mode := range order {
			g, err := runGroup(ctx, python, d, mode, 1)
			if err != nil {
				return h, err
			}
			if mode == modeIPC {
				h.IPC = append(h.IPC, g.loads...)
			} else {
				h.Parquet = append(h.Parquet, g.loads...)
			}
		}
	}
	return h, nil
}

// FanOut is the memory of groups of children that hold d at the same time.
type FanOut struct {
	Children int   // children in the idle and IPC groups
	IdleOne  PSS   // one child alone, nothing loaded
	Idle     []PSS // Children children at once, nothing loaded
	IPC      []PSS // Children children holding the memory-mapped table
	Parquet  []PSS // children holding a table each read from Parquet

	// ParquetPeak is the peak RSS of one child reading d from Parquet alone,
	// and MemAvailable what was free before the Parquet group: the group has
	// as many of the Children as fit with parquetReserve left over.
	ParquetPeak  int64
	MemAvailable int64
}

// parquetReserve is memory left free while the Parquet group runs, for the
// rest of a shared machine (ten 1 GB Parquet children would take ~18 GB of
// a 24 GB one, so fewer run and their sum is scaled).
const parquetReserve = 8 << 30

// MeasureFanOut runs, one group after the other: one idle child; n idle
// children; n children loading d from the IPC file; one child reading d
// from Parquet, for its peak memory; and up to n such children, as many as
// MemAvailable allows. Each group's PSS is read once all its children are
// ready (every buffer touched).
func MeasureFanOut(ctx context.Context, python string, d *Dataset, n int) (FanOut, error) {
	f := FanOut{Children: n}
	g, err := runGroup(ctx, python, d, modeIdle, 1)
	if err != nil {
		return f, err
	}
	f.IdleOne = g.pss[0]
	if g, err = runGroup(ctx, python, d, modeIdle, n); err != nil {
		return f, err
	}
	f.Idle = g.pss
	if g, err = runGroup(ctx, python, d, modeIPC, n); err != nil {
		return f, err
	}
	f.IPC = g.pss

	if err := d.WarmParquet(); err != nil {
		return f, err
	}
	if g, err = runGroup(ctx, python, d, modeParquet, 1); err != nil {
		return f, err
	}
	f.ParquetPeak = g.peak[0]
	if f.MemAvailable, err = MemAvailable(); err != nil {
		return f, err
	}
	np := min(int64(n), (f.MemAvailable-parquetReserve)/f.ParquetPeak)
	if np < 1 {
		return f, fmt.Errorf("MemAvailable is %s: not enough for a second child reading the Parquet table (peak %s) with %s kept free",
			fmtBytes(f.MemAvailable), fmtBytes(f.ParquetPeak), fmtBytes(parquetReserve))
	}
	if g, err = runGroup(ctx, python, d, modeParquet, int(np)); err != nil {
		return f, err
	}
	f.Parquet = g.pss
	return f, nil
}

// group is what runGroup measured: one Load, PSS and peak RSS per child.
type group struct {
	loads []Load
	pss   []PSS
	peak  []int64
}

// runGroup starts n children in mode at once, waits until every one is
// ready, checks what each loaded, reads each one's PSS while they all still
// hold their tables, then releases them. Children still running when it
// returns early (error or panic) are killed by PID and waited.
func runGroup(ctx context.Context, python string, d *Dataset, mode string, n int) (group, error) {
	var g group
	path := map[string]string{modeIPC: d.IPCPath, modeParquet: d.ParquetPath}[mode]
	children := make([]*child, 0, n)
	defer func() {
		for _, c := range children {
			c.kill()
		}
	}()
	for range n {
		c, err := startChild(python, mode, path)
		if err != nil {
			return g, err
		}
		children = append(children, c)
	}
	for _, c := range children {
		l, err := c.awaitReady(ctx)
		if err != nil {
			return g, err
		}
		if mode != modeIdle {
			if err := d.Check(l); err != nil {
				return g, err
			}
		}
		g.loads = append(g.loads, l)
	}
	for _, c := range children {
		p, err := ReadPSS(c.load.PID)
		if err != nil {
			return g, err
		}
		peak, err := ReadPeakRSS(c.load.PID)
		if err != nil {
			return g, err
		}
		g.pss, g.peak = append(g.pss, p), append(g.peak, peak)
	}
	for _, c := range children {
		if err := c.release(); err != nil {
			return g, err
		}
	}
	return g, nil
}
