package arrowipc

import (
	"context"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BatchRows is the size of the batches Write writes when its reader can
// combine its batches.
const BatchRows = 128 << 10

// Write writes every batch of r to path as an Arrow IPC file
// (uncompressed, so that readers map it without decoding) and returns the
// row count. The file appears under its name only when complete: it is
// written as path+".tmp" (created exclusively, so two writers of one path
// do not mix) and renamed.
func Write(ctx context.Context, path string, r array.RecordReader) (int64, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(r.Schema()), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return 0, err
	}
	fail := func(err error) (int64, error) {
		w.Close()
		f.Close()
		os.Remove(tmp)
		return 0, err
	}
	// DuckDB produces chunks of 2,048 rows. Readers pay per batch (a
	// table of thousands of chunks computes and writes slowly), so a
	// DuckDB reader combines them into batches of about BatchRows rows,
	// straight from its vectors. Reading (DuckDB's scan and that copy)
	// runs beside writing: two cores' worth of work overlap.
	if c, ok := r.(interface{ Combine(rows int) }); ok {
		c.Combine(BatchRows)
	}
	batches := make(chan arrow.RecordBatch, 2)
	stop := make(chan struct{})
	var rows int64
	var readErr error
	go func() {
		defer close(batches)
		for r.Next() {
			if err := ctx.Err(); err != nil {
				readErr = err
				return
			}
			rec := r.RecordBatch()
			rec.Retain()
			rows += rec.NumRows()
			select {
			case batches <- rec:
			case <-stop:
				rec.Release()
				return
			}
		}
		readErr = r.Err()
	}()
	var writeErr error
	for rec := range batches {
		if writeErr == nil {
			if writeErr = w.Write(rec); writeErr != nil {
				close(stop)
			}
		}
		rec.Release()
	}
	// batches is closed: the reader is done with r.
	if writeErr != nil {
		return fail(writeErr)
	}
	if readErr != nil {
		return fail(readErr)
	}
	if err := w.Close(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return rows, os.Rename(tmp, path)
}
