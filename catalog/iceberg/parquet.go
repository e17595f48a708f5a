package iceberg

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

var parquetMagic = []byte("PAR1")

// parquetProbe is what reading a Parquet file's footer tells the import.
type parquetProbe struct {
	cols   []fileColumn
	schema *arrow.Schema
	rows   int64
	footer *metadata.FileMetaData
}

// checkParquetMagic verifies the "PAR1" magic bytes at both ends of the file.
func checkParquetMagic(path string, size int64) error {
	bad := errdefs.WithHint(errdefs.ErrInvalidArgument, "import reads Parquet files by the .parquet extension; rename the file if it is something else",
		"file %s is not a Parquet file: it does not start and end with the magic bytes \"PAR1\"", path)
	if size < 12 {
		return bad
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("file %s: %w", path, err)
	}
	defer f.Close()
	var head, tail [4]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return fmt.Errorf("file %s: %w", path, err)
	}
	if _, err := f.ReadAt(tail[:], size-4); err != nil {
		return fmt.Errorf("file %s: %w", path, err)
	}
	if !bytes.Equal(head[:], parquetMagic) || !bytes.Equal(tail[:], parquetMagic) {
		return bad
	}
	return nil
}

// corruptParquet classifies a failure of the Parquet reader.
func corruptParquet(path string, err error) error {
	return errdefs.New(errdefs.ErrInvalidArgument, "file %s: unreadable Parquet file: %v", path, err)
}

// probeParquet reads a Parquet file's footer: its schema and row count.
func probeParquet(path string, size int64) (p *parquetProbe, err error) {
	if err := checkParquetMagic(path, size); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, corruptParquet(path, fmt.Errorf("%v", r))
		}
	}()
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, corruptParquet(path, err)
	}
	defer rdr.Close()
	fr, err := newParquetReader(path, rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	sc, err := fr.Schema()
	if err != nil {
		return nil, corruptParquet(path, err)
	}
	p = &parquetProbe{schema: sc, rows: rdr.NumRows(), footer: rdr.MetaData()}
	if p.cols, err = arrowColumns(path, sc, parquetFieldID); err != nil {
		return nil, err
	}
	return p, nil
}

// newParquetReader is pqarrow.NewFileReader over rdr once the Arrow
// schema the file stores (ARROW:schema, which pyarrow and arrow-go write
// and the reader decodes first) is checked: a crafted one makes arrow-go
// allocate what it says, tens of GiB, and the process dies.
func newParquetReader(path string, rdr *file.Reader, props pqarrow.ArrowReadProperties, mem memory.Allocator) (*pqarrow.FileReader, error) {
	if v := rdr.MetaData().KeyValueMetadata().FindValue("ARROW:schema"); v != nil {
		// Decoded as the reader decodes it: padded, else unpadded.
		var b []byte
		var err error
		if len(*v)%4 == 0 {
			b, err = base64.StdEncoding.DecodeString(*v)
		}
		if len(b) == 0 || err != nil {
			b, err = base64.RawStdEncoding.DecodeString(*v)
		}
		if err == nil {
			err = arrowipc.CheckSchema(b)
		}
		if err != nil {
			return nil, corruptParquet(path, fmt.Errorf("its ARROW:schema: %v", err))
		}
	}
	fr, err := pqarrow.NewFileReader(rdr, props, mem)
	if err != nil {
		return nil, corruptParquet(path, err)
	}
	return fr, nil
}

// parquetFieldID returns the Parquet field id of f, or -1.
func parquetFieldID(f arrow.Field) int {
	v, ok := f.Metadata.GetValue("PARQUET:field_id")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// parquetBatches streams a Parquet file as batches of schema, casting each
// column to the table's type. colOf maps each schema field to its column in
// the file. The caller releases each batch.
func parquetBatches(ctx context.Context, mem memory.Allocator, path string, schema *arrow.Schema, colOf []int, batchRows int,
	yield func(arrow.RecordBatch) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = corruptParquet(path, fmt.Errorf("%v", r))
		}
	}()
	props := parquet.NewReaderProperties(mem)
	// Read pages through a small buffer instead of whole column chunks, so a
	// file with huge row groups still streams.
	props.BufferedStreamEnabled = true
	props.BufferSize = 1 << 20
	rdr, err := file.OpenParquetFile(path, false, file.WithReadProps(props))
	if err != nil {
		return corruptParquet(path, err)
	}
	defer rdr.Close()
	fr, err := newParquetReader(path, rdr, pqarrow.ArrowReadProperties{BatchSize: int64(batchRows)}, mem)
	if err != nil {
		return err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return corruptParquet(path, err)
	}
	defer rr.Release()
	cols := make([]arrow.Array, schema.NumFields())
	for rr.Next() {
		in := rr.RecordBatch()
		for i := range cols {
			c, err := castTo(ctx, mem, in.Column(colOf[i]), schema.Field(i).Type)
			if err != nil {
				for _, done := range cols[:i] {
					done.Release()
				}
				return errdefs.New(errdefs.ErrInvalidArgument, "file %s: column %q: converting %s to %s: %v",
					path, in.ColumnName(colOf[i]), in.Column(colOf[i]).DataType(), schema.Field(i).Type, err)
			}
			cols[i] = c
		}
		out := array.NewRecordBatch(schema, cols, in.NumRows())
		for _, c := range cols {
			c.Release()
		}
		if err := yield(out); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return corruptParquet(path, err)
	}
	return nil
}
