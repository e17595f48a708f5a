package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

const (
	// shmBase is where the IPC files go, as the runtime's per-run folders do.
	shmBase = "/dev/shm"
	// rootPrefix + pid names this process's folder in shmBase (IPC files)
	// and in os.TempDir() (Parquet files).
	rootPrefix = "lakehouse-bench-"
	// batchRows is the rows of one record batch (and one Parquet row group).
	batchRows = 1 << 20
	// rowBytes is the Arrow size of one row: four 8-byte columns, no nulls.
	rowBytes = 32
)

// schema is the benchmark table: an order-like fact table whose columns are
// all fixed-width, so its Arrow size is exactly rows × rowBytes.
var schema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},       // 0, 1, 2, … (delta-friendly)
	{Name: "customer", Type: arrow.PrimitiveTypes.Int64}, // pseudo-random in [0, 1e6)
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64}, // pseudo-random in [0, 1000)
	{Name: "ts", Type: arrow.PrimitiveTypes.Int64},       // epoch seconds, 16 rows a second
}, nil)

// Dataset is one generated table written twice: as an uncompressed Arrow IPC
// file in /dev/shm and as snappy Parquet on disk. Remove deletes both.
type Dataset struct {
	Rows        int64
	ArrowBytes  int64 // size of the column buffers: Rows × rowBytes
	IPCPath     string
	IPCSize     int64
	ParquetPath string
	ParquetSize int64

	intSums  map[string]int64   // expected pc.sum of each int64 column
	floatSum map[string]float64 // expected pc.sum of each float64 column
	dirs     []string           // removed by Remove, the /dev/shm one first
}

// live holds the datasets not yet removed, for removeAll on exit or signal.
var live = struct {
	sync.Mutex
	sets map[*Dataset]struct{}
}{sets: map[*Dataset]struct{}{}}

// shmRoot and diskRoot are this process's folders.
func shmRoot() string  { return filepath.Join(shmBase, rootPrefix+strconv.Itoa(os.Getpid())) }
func diskRoot() string { return filepath.Join(os.TempDir(), rootPrefix+strconv.Itoa(os.Getpid())) }

// NewDataset generates rows rows and writes them to new folders
// shmRoot()/name-* (IPC) and diskRoot()/name-* (Parquet).
// The data is deterministic; the expected column sums are kept for Check.
func NewDataset(name string, rows int64) (*Dataset, error) {
	d := &Dataset{
		Rows:       rows,
		ArrowBytes: rows * rowBytes,
		intSums:    map[string]int64{},
		floatSum:   map[string]float64{},
	}
	live.Lock()
	live.sets[d] = struct{}{}
	live.Unlock()
	written := false
	defer func() { // on an error or a panic
		if !written {
			_ = d.Remove()
		}
	}()
	for _, root := range []string{shmRoot(), diskRoot()} {
		if err := os.MkdirAll(root, 0o700); err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp(root, name+"-")
		if err != nil {
			return nil, err
		}
		d.dirs = append(d.dirs, dir)
	}
	d.IPCPath = filepath.Join(d.dirs[0], "output.arrow")
	d.ParquetPath = filepath.Join(d.dirs[1], "output.parquet")
	if err := d.write(); err != nil {
		return nil, fmt.Errorf("write dataset %s: %w", name, err)
	}
	written = true
	return d, nil
}

// write generates the batches and appends each to both files.
func (d *Dataset) write() error {
	ipcFile, err := os.Create(d.IPCPath)
	if err != nil {
		return err
	}
	defer ipcFile.Close()
	pqFile, err := os.Create(d.ParquetPath)
	if err != nil {
		return err
	}
	defer pqFile.Close() // for early returns; pw.Close closes it too

	iw, err := ipc.NewFileWriter(ipcFile, ipc.WithSchema(schema))
	if err != nil {
		return err
	}
	// Snappy is pyarrow's own default, so the baseline reads the kind of
	// file it would usually meet.
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(batchRows),
	)
	pw, err := pqarrow.NewFileWriter(schema, pqFile, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return err
	}
	for start := int64(0); start < d.Rows; start += batchRows {
		rec := d.batch(start, min(batchRows, d.Rows-start))
		err := iw.Write(rec)
		if err == nil {
			err = pw.Write(rec)
		}
		rec.Release()
		if err != nil {
			return err
		}
	}
	if err := iw.Close(); err != nil {
		return err
	}
	if err := pw.Close(); err != nil {
		return err
	}
	if d.IPCSize, err = fileSize(d.IPCPath); err != nil {
		return err
	}
	d.ParquetSize, err = fileSize(d.ParquetPath)
	return err
}

// batch builds rows [start, start+n) and adds them to the expected sums.
func (d *Dataset) batch(start, n int64) arrow.RecordBatch {
	id := make([]int64, n)
	customer := make([]int64, n)
	amount := make([]float64, n)
	ts := make([]int64, n)
	var idSum, customerSum, tsSum int64
	var amountSum float64
	for j := range n {
		i := start + j
		id[j] = i
		customer[j] = int64(splitmix64(uint64(i)) % 1_000_000)
		amount[j] = float64(splitmix64(uint64(i)^0x5851f42d4c957f2d)>>11) / (1 << 53) * 1000
		ts[j] = 1_700_000_000 + i/16
		idSum += id[j]
		customerSum += customer[j]
		amountSum += amount[j]
		tsSum += ts[j]
	}
	d.intSums["id"] += idSum
	d.intSums["customer"] += customerSum
	d.floatSum["amount"] += amountSum
	d.intSums["ts"] += tsSum
	cols := []arrow.Array{
		fixedWidthArray(arrow.PrimitiveTypes.Int64, arrow.Int64Traits.CastToBytes(id), len(id)),
		fixedWidthArray(arrow.PrimitiveTypes.Int64, arrow.Int64Traits.CastToBytes(customer), len(customer)),
		fixedWidthArray(arrow.PrimitiveTypes.Float64, arrow.Float64Traits.CastToBytes(amount), len(amount)),
		fixedWidthArray(arrow.PrimitiveTypes.Int64, arrow.Int64Traits.CastToBytes(ts), len(ts)),
	}
	rec := array.NewRecordBatch(schema, cols, n)
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// fixedWidthArray wraps n values (no nulls) without copying them.
func fixedWidthArray(t arrow.DataType, values []byte, n int) arrow.Array {
	data := array.NewData(t, n, []*memory.Buffer{nil, memory.NewBufferBytes(values)}, nil, 0, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// splitmix64 is a fixed pseudo-random function of i (SplitMix64's finalizer).
func splitmix64(i uint64) uint64 {
	z := i + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Check returns an error unless a child's load saw every row and the sum of
// every column that the generator computed.
func (d *Dataset) Check(l Load) error {
	if l.Rows != d.Rows {
		return fmt.Errorf("child %d (%s) saw %d rows, want %d", l.PID, l.Mode, l.Rows, d.Rows)
	}
	for name, want := range d.intSums {
		got, err := l.Sums[name].Int64()
		if err != nil || got != want {
			return fmt.Errorf("child %d (%s): sum(%s) = %s, want %d", l.PID, l.Mode, name, l.Sums[name], want)
		}
	}
	for name, want := range d.floatSum {
		got, err := l.Sums[name].Float64()
		if err != nil || math.Abs(got-want) > 1e-9*math.Abs(want) {
			return fmt.Errorf("child %d (%s): sum(%s) = %s, want %g", l.PID, l.Mode, name, l.Sums[name], want)
		}
	}
	return nil
}

// WarmParquet reads the Parquet file once so its pages are in the page cache
// and the baseline pays for decoding, not for the disk.
func (d *Dataset) WarmParquet() error {
	f, err := os.Open(d.ParquetPath)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// Remove deletes the dataset's files, and this process's folders once no
// other dataset is in them. It is safe to call more than once.
func (d *Dataset) Remove() error {
	live.Lock()
	defer live.Unlock()
	var errs []error
	for _, dir := range d.dirs {
		errs = append(errs, os.RemoveAll(dir))
	}
	d.dirs = nil
	delete(live.sets, d)
	if len(live.sets) == 0 {
		errs = append(errs, os.RemoveAll(shmRoot()), os.RemoveAll(diskRoot()))
	}
	return errors.Join(errs...)
}

// removeAll removes every dataset still present; for TestMain and signals.
func removeAll() error {
	live.Lock()
	sets := make([]*Dataset, 0, len(live.sets))
	for d := range live.sets {
		sets = append(sets, d)
	}
	live.Unlock()
	var errs []error
	for _, d := range sets {
		errs = append(errs, d.Remove())
	}
	return errors.Join(append(errs, os.RemoveAll(shmRoot()), os.RemoveAll(diskRoot()))...)
}

// sweepStale removes the folders left by earlier bench processes that died
// without cleaning up (a -timeout panic cannot be recovered).
func sweepStale() error {
	var errs []error
	for _, base := range []string{shmBase, os.TempDir()} {
		entries, err := os.ReadDir(base)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			pidText, ok := strings.CutPrefix(e.Name(), rootPrefix)
			if !ok {
				continue
			}
			pid, err := strconv.Atoi(pidText)
			if err != nil || pid <= 0 || pid == os.Getpid() {
				continue
			}
			if syscall.Kill(pid, 0) == syscall.ESRCH {
				errs = append(errs, os.RemoveAll(filepath.Join(base, e.Name())))
			}
		}
	}
	return errors.Join(errs...)
}
