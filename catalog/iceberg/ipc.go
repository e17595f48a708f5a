package iceberg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Arrow IPC import. A pipeline model's output is an Arrow IPC file
// (pyarrow's pa.ipc.new_file or feather.write_feather, arrow-go's
// ipc.FileWriter), usually in /dev/shm. Import maps the file into memory and
// reads it twice, like a CSV file: the probe reads the footer, the schema
// and every record batch's header, which checks the file's structure and
// counts its rows; the second pass cuts the batches into slices of
// BatchRows rows, casts them to the table's types and streams them into the
// Parquet writer.
//
// Memory: a file of plain columns is read in place (ipc.NewMappedFileReader:
// batches point into the mapping) and one slice at a time is copied out
// before it is cast, so the heap holds one slice per batch in flight,
// whatever the size of the file's batches. Other files (see
// ipcLayout.inPlace) are read with ipc.NewFileReader over the mapping,
// which copies one whole record batch at a time into the allocator. Either
// way no batch handed to the writer, nor any compute kernel, points into
// the mapping, so unmapping it once the reading is done is safe however
// long the writer keeps its batches.
//
// A corrupt file must fail the import, not crash the process. Before
// arrow-go parses anything, readIPCLayout checks the footer's flatbuffers
// and checkMessage each message's (ipclayout.go, ipcmessage.go), so that
// no corrupt length reaches an allocation; validateBatch checks each batch
// before a compute kernel, which runs on a goroutine of its own, sees it
// (ipcvalidate.go). What arrow-go still panics on is recovered: reads run
// under guard, and a mapped file that is truncated while it is read makes
// the next access fault, which debug.SetPanicOnFault turns into a panic.

// arrowMagic starts and ends an Arrow IPC file.
var arrowMagic = []byte("ARROW1")

const ipcHint = "import reads the Arrow IPC file format: write it with pyarrow.ipc.new_file, pyarrow.feather.write_feather or arrow-go's ipc.FileWriter"

// ipcFile is an Arrow IPC file mapped into memory with a reader over it.
type ipcFile struct {
	path string
	size int64
	data []byte
	// mapped is set when r reads batches in place (ipcLayout.inPlace).
	mapped bool
	unmap  func() error
	layout *ipcLayout // the footer, checked
	r      *ipc.FileReader
}

// checkIPCMagic verifies that the file starts and ends like an Arrow IPC
// file, telling a stream, a truncated file and something else apart.
func checkIPCMagic(path string, size int64) error {
	if size == 0 {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, ipcHint, "file %s is empty, not an Arrow IPC file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("file %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, min(size, 8))
	if _, err := f.ReadAt(head, 0); err != nil {
		return fmt.Errorf("file %s: %w", path, err)
	}
	switch {
	case bytes.HasPrefix(head, []byte{0xff, 0xff, 0xff, 0xff}):
		return errdefs.WithHint(errdefs.ErrInvalidArgument, ipcHint,
			"file %s is an Arrow IPC stream, not an Arrow IPC file", path)
	case !bytes.HasPrefix(head, arrowMagic):
		return errdefs.WithHint(errdefs.ErrInvalidArgument, ipcHint,
			"file %s is not an Arrow IPC file: it does not start with the magic bytes %q", path, arrowMagic)
	}
	tail := make([]byte, len(arrowMagic))
	if size < int64(2*len(arrowMagic)) {
		return ipcTruncated(path)
	}
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil {
		return fmt.Errorf("file %s: %w", path, err)
	}
	if !bytes.Equal(tail, arrowMagic) {
		return ipcTruncated(path)
	}
	return nil
}

func ipcTruncated(path string) error {
	return errdefs.WithHint(errdefs.ErrInvalidArgument, "was it truncated, or is it still being written?",
		"file %s is not a complete Arrow IPC file: it does not end with the magic bytes %q", path, arrowMagic)
}

// corruptIPC classifies a failure of the IPC reader.
func corruptIPC(path string, err error) error {
	return errdefs.New(errdefs.ErrInvalidArgument, "file %s is not a valid Arrow IPC file: %v", path, err)
}

// openIPC maps an Arrow IPC file of the given size and opens a reader over
// it. The caller closes it.
func openIPC(path string, size int64, mem memory.Allocator) (*ipcFile, error) {
	if err := checkIPCMagic(path, size); err != nil {
		return nil, err
	}
	data, unmap, err := mapFile(path, size)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	f := &ipcFile{path: path, size: size, data: data, unmap: unmap}
	// The body size limit guards streams against huge allocations; in a
	// file every block is checked against the file's size instead, and a
	// pandas frame is often one batch of several hundred MiB.
	opts := []ipc.Option{ipc.WithAllocator(mem), ipc.WithBodySizeLimit(0)}
	err = f.guard(func() error {
		l, err := readIPCLayout(path, data)
		if err != nil {
			return err
		}
		f.layout = l
		// The reader loads every dictionary up front.
		left := f.layout.limit
		for i, blk := range f.layout.dicts {
			n, err := f.layout.checkMessage(data, blk, true, left)
			if err != nil {
				return fmt.Errorf("dictionary batch %d: %w", i, err)
			}
			left -= n
		}
		if f.mapped = l.inPlace(data); f.mapped {
			f.r, err = ipc.NewMappedFileReader(data, opts...)
		} else {
			f.r, err = ipc.NewFileReader(bytes.NewReader(data), opts...)
		}
		return err
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Close releases the reader and unmaps the file.
func (f *ipcFile) Close() error {
	if f.r != nil {
		f.r.Close()
		f.r = nil
	}
	if f.unmap == nil {
		return nil
	}
	err := f.unmap()
	f.unmap, f.data = nil, nil
	return err
}

// guard runs fn, which reads the mapping, turning a panic (a fault of a
// file truncated under us, or the IPC reader choking on corrupt data) into
// an error that names the file.
func (f *ipcFile) guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
		if err == nil || errdefs.Class(err) != errdefs.ErrInternal ||
			errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		if info, serr := os.Stat(f.path); serr == nil && info.Size() != f.size {
			err = errdefs.WithHint(errdefs.ErrConflict, "import it again once it is complete",
				"file %s changed while it was imported", f.path)
			return
		}
		err = corruptIPC(f.path, err)
	}()
	return fn()
}

// ipcProbe is what the first pass learns about an Arrow IPC file.
type ipcProbe struct {
	cols []fileColumn
	rows int64
}

// probeIPC reads an Arrow IPC file's schema and the header of every record
// batch.
func probeIPC(ctx context.Context, path string, size int64, mem memory.Allocator) (*ipcProbe, error) {
	f, err := openIPC(path, size, mem)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cols, err := arrowColumns(path, f.r.Schema(), func(arrow.Field) int { return -1 })
	if err != nil {
		return nil, err
	}
	for i, c := range cols {
		if c.name == "" {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "file %s: column %d has no name; import needs a name for every column", path, i+1)
		}
	}
	p := &ipcProbe{cols: cols}
	for i := range f.layout.batches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := f.guard(func() error {
			rec, err := f.batch(i)
			if err != nil {
				return err
			}
			p.rows += rec.NumRows()
			rec.Release()
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ipcBatches streams an Arrow IPC file as batches of schema of at most
// batchRows rows, casting each column to the table's type. colOf maps each
// schema field to its column in the file. The caller releases each batch.
func ipcBatches(ctx context.Context, mem memory.Allocator, path string, size int64, schema *arrow.Schema, colOf []int, batchRows int,
	yield func(arrow.RecordBatch) error) error {
	f, err := openIPC(path, size, mem)
	if err != nil {
		return err
	}
	defer f.Close()
	for i := range f.layout.batches {
		if err := ctx.Err(); err != nil {
			return err
		}
		var in arrow.RecordBatch
		if err := f.guard(func() (err error) {
			if in, err = f.batch(i); err != nil {
				return err
			}
			if err := validateBatch(in, int64(batchRows), f.layout.limit); err != nil {
				in.Release()
				return err
			}
			return nil
		}); err != nil {
			return err
		}
		err := func() error {
			defer in.Release()
			for off := int64(0); off < in.NumRows(); off += int64(batchRows) {
				var out arrow.RecordBatch
				err := f.guard(func() (err error) {
					out, err = f.slice(ctx, mem, in, off, min(off+int64(batchRows), in.NumRows()), schema, colOf)
					return err
				})
				if err != nil {
					return err
				}
				if err := yield(out); err != nil {
					return err
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// batch reads record batch i, once its message is checked.
func (f *ipcFile) batch(i int) (arrow.RecordBatch, error) {
	if _, err := f.layout.checkMessage(f.data, f.layout.batches[i], false, f.layout.limit); err != nil {
		return nil, fmt.Errorf("record batch %d: %w", i, err)
	}
	return f.r.RecordBatchAt(i)
}

// slice returns rows [from, to) of in as a batch of schema whose memory is
// the allocator's, never the mapping's.
func (f *ipcFile) slice(ctx context.Context, mem memory.Allocator, in arrow.RecordBatch, from, to int64,
	schema *arrow.Schema, colOf []int) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for i := range schema.NumFields() {
		src := array.NewSlice(in.Column(colOf[i]), from, to)
		if f.aliases(src.Data()) {
			// Copy before a kernel reads it on a goroutine of its own,
			// where a fault would crash the process.
			cp, err := array.Concatenate([]arrow.Array{src}, mem)
			src.Release()
			if err != nil {
				return nil, fmt.Errorf("file %s: column %q: copying: %w", f.path, in.ColumnName(colOf[i]), err)
			}
			src = cp
		}
		c, err := castTo(ctx, mem, src, schema.Field(i).Type)
		src.Release()
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "file %s: column %q: converting %s to %s: %v",
				f.path, in.ColumnName(colOf[i]), in.Column(colOf[i]).DataType(), schema.Field(i).Type, err)
		}
		cols = append(cols, c)
	}
	return array.NewRecordBatch(schema, cols, to-from), nil
}

// aliases reports whether any buffer of d points into the mapping.
func (f *ipcFile) aliases(d arrow.ArrayData) bool {
	if !f.mapped || len(f.data) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(f.data)))
	hi := lo + uintptr(len(f.data))
	var walk func(d arrow.ArrayData) bool
	walk = func(d arrow.ArrayData) bool {
		for _, b := range d.Buffers() {
			if b == nil || b.Len() == 0 {
				continue
			}
			if p := uintptr(unsafe.Pointer(unsafe.SliceData(b.Bytes()))); p >= lo && p < hi {
				return true
			}
		}
		for _, c := range d.Children() {
			if walk(c) {
				return true
			}
		}
		// Dictionary returns a typed nil for other types.
		return d.DataType().ID() == arrow.DICTIONARY && walk(d.Dictionary())
	}
	return walk(d)
}
