package arrowipc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// magic starts and ends an Arrow IPC file.
var magic = []byte("ARROW1")

// Hint is the hint of the errors that say a file is not in the Arrow IPC
// file format.
const Hint = "lakehouse reads the Arrow IPC file format: write it with pyarrow.ipc.new_file, pyarrow.feather.write_feather or arrow-go's ipc.FileWriter"

// Options are the options of Open.
type Options struct {
	// Allocator holds the batches that are not read in place (see
	// File.InPlace) and the dictionaries. Default memory.DefaultAllocator.
	Allocator memory.Allocator
	// Size is the file's size as the caller found it (os.Stat), so that a
	// file that changes between that and the reading is told apart from a
	// corrupt one. Default: the size Open finds.
	Size int64
}

// File is an Arrow IPC file mapped read-only into memory, its footer and
// schema checked, with a reader over it. Its methods are not safe for
// concurrent use.
type File struct {
	path string
	size int64
	data []byte
	// inPlace is set when r reads batches in place (fileLayout.inPlace).
	inPlace bool
	unmap   func() error
	layout  *fileLayout // the footer, checked
	r       *ipc.FileReader
}

// Open maps the Arrow IPC file at path and opens a reader over it, once its
// magic bytes, footer, schema and dictionaries are checked. It returns an
// error of class InvalidArgument if the file is not a valid Arrow IPC file
// (with Hint if it is not one at all) and Conflict if it changed while it
// was read. The caller closes the file.
func Open(path string, opts Options) (*File, error) {
	mem := opts.Allocator
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	size := opts.Size
	if size == 0 {
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", path, err)
		}
		size = info.Size()
	}
	if err := checkMagic(path, size); err != nil {
		return nil, err
	}
	data, unmap, err := mapFile(path, size)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	f := &File{path: path, size: size, data: data, unmap: unmap}
	// The body size limit guards streams against huge allocations; in a
	// file every block is checked against the file's size instead, and a
	// pandas frame is often one batch of several hundred MiB.
	ropts := []ipc.Option{ipc.WithAllocator(mem), ipc.WithBodySizeLimit(0)}
	err = f.Guard(func() error {
		l, err := readLayout(path, data)
		if err != nil {
			return err
		}
		f.layout = l
		// The reader loads every dictionary up front.
		left := f.layout.limit
		for i, blk := range f.layout.dicts {
			n, _, err := f.layout.checkMessage(data, blk, true, false, left)
			if err != nil {
				return fmt.Errorf("dictionary batch %d: %w", i, err)
			}
			left -= n
		}
		if f.inPlace = l.inPlace(data); f.inPlace {
			f.r, err = ipc.NewMappedFileReader(data, ropts...)
		} else {
			f.r, err = ipc.NewFileReader(bytes.NewReader(data), ropts...)
		}
		return err
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkMagic verifies that the file starts and ends like an Arrow IPC
// file, telling a stream, a truncated file and something else apart.
func checkMagic(path string, size int64) error {
	if size == 0 {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, Hint, "file %s is empty, not an Arrow IPC file", path)
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
		return errdefs.WithHint(errdefs.ErrInvalidArgument, Hint,
			"file %s is an Arrow IPC stream, not an Arrow IPC file", path)
	case !bytes.HasPrefix(head, magic):
		return errdefs.WithHint(errdefs.ErrInvalidArgument, Hint,
			"file %s is not an Arrow IPC file: it does not start with the magic bytes %q", path, magic)
	}
	tail := make([]byte, len(magic))
	if size < int64(2*len(magic)) {
		return truncated(path)
	}
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil {
		return fmt.Errorf("file %s: %w", path, err)
	}
	if !bytes.Equal(tail, magic) {
		return truncated(path)
	}
	return nil
}

// HasMagic reports whether the file at path starts like an Arrow IPC
// file (it may still be truncated or corrupt).
func HasMagic(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(magic))
	_, err = io.ReadFull(f, head)
	return err == nil && bytes.Equal(head, magic)
}

func truncated(path string) error {
	return errdefs.WithHint(errdefs.ErrInvalidArgument, "was it truncated, or is it still being written?",
		"file %s is not a complete Arrow IPC file: it does not end with the magic bytes %q", path, magic)
}

// Close releases the reader and unmaps the file.
func (f *File) Close() error {
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

// Guard runs fn, which reads the mapping (a batch of the file, or arrays
// that point into it), turning a panic (a fault of a file truncated under
// us, or arrow-go choking on corrupt data) into an error that names the
// file. An error of fn without a class becomes InvalidArgument (the file
// is corrupt), or Conflict if the file's size has changed.
func (f *File) Guard(fn func() error) (err error) {
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
			err = errdefs.WithHint(errdefs.ErrConflict, "read it again once it is complete",
				"file %s changed while it was read", f.path)
			return
		}
		err = errdefs.New(errdefs.ErrInvalidArgument, "file %s is not a valid Arrow IPC file: %v", f.path, err)
	}()
	return fn()
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Size is the file's size in bytes.
func (f *File) Size() int64 { return f.size }

// Schema returns the file's schema.
func (f *File) Schema() *arrow.Schema { return f.r.Schema() }

// NumBatches returns the number of record batches in the file.
func (f *File) NumBatches() int { return len(f.layout.batches) }

// InPlace reports whether batches are read in place: their buffers point
// into the mapping, which Close unmaps.
func (f *File) InPlace() bool { return f.inPlace }

// Rows checks every record batch's header (not its values) and returns
// the rows of all.
func (f *File) Rows(ctx context.Context) (int64, error) {
	return f.rows(ctx, false)
}

// rows is Rows, checking offsets too if offsets (batchReader.offsets).
func (f *File) rows(ctx context.Context, offsets bool) (int64, error) {
	offsets = offsets && !f.layout.bigEndian
	var rows int64
	for i, blk := range f.layout.batches {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		err := f.Guard(func() error {
			_, n, err := f.layout.checkMessage(f.data, blk, false, offsets, f.layout.limit)
			if err != nil {
				return fmt.Errorf("record batch %d: %w", i, err)
			}
			rows += n
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return rows, nil
}

// Batch reads record batch i, once its message is checked, and validates
// it (offsets, bitmaps, dictionary indices, decimals), so that whatever
// reads its values, a compute kernel on a goroutine of its own or DuckDB
// in C, reads within its buffers. Its buffers point into the mapping if
// InPlace: it must not be read after Close, and whatever reads it outside
// Guard may fault if the file is truncated meanwhile. The caller releases
// it. Errors are classified as Open's are.
func (f *File) Batch(i int) (rec arrow.RecordBatch, err error) {
	err = f.Guard(func() error {
		if _, _, err := f.layout.checkMessage(f.data, f.layout.batches[i], false, false, f.layout.limit); err != nil {
			return fmt.Errorf("record batch %d: %w", i, err)
		}
		if rec, err = f.r.RecordBatchAt(i); err != nil {
			return fmt.Errorf("record batch %d: %w", i, err)
		}
		if err := validateBatch(rec); err != nil {
			rec.Release()
			rec = nil
			return fmt.Errorf("record batch %d: %w", i, err)
		}
		return nil
	})
	return rec, err
}

// CheckDecodedSize checks that no slice of window rows of any
// dictionary-encoded column of rec (a batch of f) decodes to more than
// the file's memory limit (half the memory available, at most 16 GiB): a
// small dictionary repeated can stand for more data than memory holds.
// It returns an error of class InvalidArgument.
func (f *File) CheckDecodedSize(rec arrow.RecordBatch, window int64) error {
	return f.Guard(func() error {
		for i, c := range rec.Columns() {
			if d, ok := c.(*array.Dictionary); ok {
				if err := checkDecodedSize(d, window, f.layout.limit); err != nil {
					return fmt.Errorf("column %q: %w", rec.ColumnName(i), err)
				}
			}
		}
		return nil
	})
}

// Detach returns a with no buffer in the mapping: a itself (retained) if
// none is, or a copy in mem. Call it under Guard.
func (f *File) Detach(a arrow.Array, mem memory.Allocator) (arrow.Array, error) {
	if !f.aliases(a.Data()) {
		a.Retain()
		return a, nil
	}
	return array.Concatenate([]arrow.Array{a}, mem)
}

// aliases reports whether any buffer of d points into the mapping.
func (f *File) aliases(d arrow.ArrayData) bool {
	if !f.inPlace || len(f.data) == 0 {
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

// Reader returns a reader of the file's batches (each read by Batch). It
// is valid until the file is closed; its batches too, if InPlace.
func (f *File) Reader() array.RecordReader { return &batchRecords{f: f} }

// batchRecords reads a File's batches in order.
type batchRecords struct {
	f   *File
	i   int
	cur arrow.RecordBatch
	err error
}

var _ array.RecordReader = (*batchRecords)(nil)

func (r *batchRecords) Schema() *arrow.Schema { return r.f.Schema() }

func (r *batchRecords) Next() bool {
	r.Release()
	if r.err != nil || r.i >= r.f.NumBatches() {
		return false
	}
	r.cur, r.err = r.f.Batch(r.i)
	r.i++
	return r.err == nil
}

func (r *batchRecords) RecordBatch() arrow.RecordBatch { return r.cur }

// Record returns the current batch (arrow-go's older name).
func (r *batchRecords) Record() arrow.RecordBatch { return r.cur }

func (r *batchRecords) Err() error { return r.err }

func (r *batchRecords) Retain() {}

func (r *batchRecords) Release() {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}
