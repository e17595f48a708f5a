package iceberg

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Arrow IPC import. A pipeline model's output is an Arrow IPC file
// (pyarrow's pa.ipc.new_file or feather.write_feather, arrow-go's
// ipc.FileWriter), usually in /dev/shm; internal/arrowipc opens, checks
// and maps it. Import reads it twice, like a CSV file: the probe reads the
// schema and every record batch's header, which checks the file's
// structure and counts its rows; the second pass cuts the batches into
// slices of BatchRows rows, casts them to the table's types and streams
// them into the Parquet writer.
//
// Memory: a file of plain columns is read in place (batches point into
// the mapping) and one slice at a time is copied out before it is cast,
// so the heap holds one slice per batch in flight, whatever the size of
// the file's batches. Other files are read one whole record batch at a
// time into the allocator. Either way no batch handed to the writer, nor
// any compute kernel, points into the mapping, so unmapping it once the
// reading is done is safe however long the writer keeps its batches.
// Every batch is validated, and its dictionaries' decoded size bounded,
// before a compute kernel, which runs on a goroutine of its own, sees it.

// ipcProbe is what the first pass learns about an Arrow IPC file.
type ipcProbe struct {
	schema *arrow.Schema
	cols   []fileColumn
	rows   int64
}

// probeIPC reads an Arrow IPC file's schema and the header of every record
// batch.
func probeIPC(ctx context.Context, path string, size int64, mem memory.Allocator) (*ipcProbe, error) {
	f, err := arrowipc.Open(path, arrowipc.Options{Allocator: mem, Size: size})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cols, err := arrowColumns(path, f.Schema(), func(arrow.Field) int { return -1 })
	if err != nil {
		return nil, err
	}
	for i, c := range cols {
		if c.name == "" {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "file %s: column %d has no name; import needs a name for every column", path, i+1)
		}
	}
	rows, err := f.Rows(ctx)
	if err != nil {
		return nil, err
	}
	return &ipcProbe{schema: f.Schema(), cols: cols, rows: rows}, nil
}

// ipcBatches streams an Arrow IPC file as batches of schema of at most
// batchRows rows, casting each column to the table's type. colOf maps each
// schema field to its column in the file. The caller releases each batch.
func ipcBatches(ctx context.Context, mem memory.Allocator, path string, size int64, schema *arrow.Schema, colOf []int, batchRows int,
	yield func(arrow.RecordBatch) error) error {
	f, err := arrowipc.Open(path, arrowipc.Options{Allocator: mem, Size: size})
	if err != nil {
		return err
	}
	defer f.Close()
	for i := range f.NumBatches() {
		if err := ctx.Err(); err != nil {
			return err
		}
		in, err := f.Batch(i)
		if err != nil {
			return err
		}
		err = func() error {
			defer in.Release()
			if err := f.CheckDecodedSize(in, int64(batchRows)); err != nil {
				return err
			}
			for off := int64(0); off < in.NumRows(); off += int64(batchRows) {
				var out arrow.RecordBatch
				err := f.Guard(func() (err error) {
					out, err = ipcSlice(ctx, mem, f, in, off, min(off+int64(batchRows), in.NumRows()), schema, colOf)
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

// ipcSlice returns rows [from, to) of in, a batch of f, as a batch of
// schema whose memory is the allocator's, never the mapping's.
func ipcSlice(ctx context.Context, mem memory.Allocator, f *arrowipc.File, in arrow.RecordBatch, from, to int64,
	schema *arrow.Schema, colOf []int) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for i := range schema.NumFields() {
		s := array.NewSlice(in.Column(colOf[i]), from, to)
		// Copy before a kernel reads it on a goroutine of its own, where
		// a fault would crash the process.
		src, err := f.Detach(s, mem)
		s.Release()
		if err != nil {
			return nil, fmt.Errorf("file %s: column %q: copying: %w", f.Path(), in.ColumnName(colOf[i]), err)
		}
		c, err := castTo(ctx, mem, src, schema.Field(i).Type)
		src.Release()
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, "file %s: column %q: converting %s to %s: %v",
				f.Path(), in.ColumnName(colOf[i]), in.Column(colOf[i]).DataType(), schema.Field(i).Type, err)
		}
		cols = append(cols, c)
	}
	return array.NewRecordBatch(schema, cols, to-from), nil
}
