package flight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// uploadBatchRows is the number of rows per batch a client sends, and
// uploadBatchBytes the size a batch is cut below (well under the message
// limit).
const (
	uploadBatchRows  = 64 * 1024
	uploadBatchBytes = 32 << 20
)

// ImportTable implements catalog.Service. The server first checks the
// branch, namespace and table (ActionCheckImport), as an embedded import
// does before it reads a file; then the sources, files on this machine,
// are resolved and checked as an embedded import does, sent to the server
// one by one with DoPut, and imported in one commit by ActionImportTable.
func (c *Client) ImportTable(ctx context.Context, req catalog.ImportRequest) (*catalog.ImportResult, error) {
	if len(req.Staged) > 0 {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "a client imports local files, not staged ones")
	}
	body := ImportBody{Branch: string(req.Branch), Namespace: string(req.Table.Namespace), Table: req.Table.Name,
		Sources: []string{}, Mode: string(req.Mode), PartitionBy: req.PartitionBy, Commit: c.options(req.Commit)}
	if len(req.Sources) > 0 { // without, ImportTable says there is nothing to import
		if err := c.call(ctx, ActionCheckImport, body, nil); err != nil {
			return nil, err
		}
	}
	for _, src := range req.Sources {
		if strings.HasPrefix(src, "s3://") {
			// The server would read the bucket with its own credentials,
			// for whoever names it: not offered to clients.
			return nil, errdefs.New(errdefs.ErrInvalidArgument,
				"source %s: a client imports files of its own machine, not s3:// objects; download the object and import the file, or import it embedded where the bucket's credentials are", src)
		}
	}
	files, err := iceberg.ExpandSources(req.Sources)
	if err != nil {
		return nil, err
	}
	var sent []string
	for _, f := range files {
		up, err := c.Upload(ctx, f)
		if err != nil {
			if len(sent) > 0 {
				// Best effort: the server also drops them after a while.
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				c.call(dctx, ActionDiscardUploads, DiscardUploadsBody{Uploads: sent}, nil)
				cancel()
			}
			return nil, err
		}
		sent = append(sent, up.UploadID)
		body.Sources = append(body.Sources, UploadSourcePrefix+up.UploadID)
	}
	var out ImportResult
	if err := c.call(ctx, ActionImportTable, body, &out); err != nil {
		return nil, err
	}
	return &catalog.ImportResult{Table: req.Table, Created: out.Created, Imported: out.Imported, Skipped: out.Skipped,
		Rows: out.Rows, Bytes: out.Bytes, Warnings: out.Warnings, Commit: out.Commit.Catalog()}, nil
}

// Upload sends a local file to the server with DoPut and returns its
// upload. Errors in the file are those of an embedded import.
func (c *Client) Upload(ctx context.Context, f iceberg.LocalFile) (*UploadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the call if it did not finish
	stream, err := c.fc.DoPut(c.callContext(ctx))
	if err != nil {
		return nil, c.err(err)
	}
	cmd, err := json.Marshal(UploadCommand{Upload: &Upload{Name: f.Path(), Size: f.Size(), MtimeNs: f.MtimeNs(), Format: f.Format()}})
	if err != nil {
		return nil, err
	}
	var w *flight.Writer
	// sendErr is the first error of the stream: the server ended the
	// call, and its status says why (read by Recv below).
	var sendErr error
	err = iceberg.ReadLocalFile(ctx, memory.DefaultAllocator, f, uploadBatchRows,
		func(sc *arrow.Schema) error {
			w = flight.NewRecordWriter(stream, ipc.WithSchema(sc))
			w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
			return nil
		},
		func(rec arrow.RecordBatch) error {
			defer rec.Release()
			if sendErr != nil {
				return sendErr
			}
			if err := writeBounded(w, rec); err != nil {
				sendErr = err
				return err
			}
			return nil
		})
	if err != nil && (sendErr == nil || !errors.Is(err, sendErr)) {
		return nil, err // the file's error; cancel ends the call
	}
	if sendErr == nil {
		if err := w.Close(); err != nil {
			sendErr = err
		}
	}
	if err := stream.CloseSend(); err != nil && sendErr == nil {
		sendErr = err
	}
	res, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			if sendErr != nil {
				return nil, fmt.Errorf("upload of %s: %w", f.Path(), sendErr)
			}
			return nil, fmt.Errorf("upload of %s: the server sent no answer", f.Path())
		}
		return nil, c.err(err)
	}
	var up UploadResult
	if err := json.Unmarshal(res.GetAppMetadata(), &up); err != nil || up.UploadID == "" {
		return nil, fmt.Errorf("upload of %s: bad answer from the server: %q", f.Path(), res.GetAppMetadata())
	}
	// Drain the stream so the call ends cleanly.
	for {
		if _, err := stream.Recv(); err != nil {
			break
		}
	}
	return &up, nil
}

// writeBounded writes rec in slices of about uploadBatchBytes at most.
func writeBounded(w *flight.Writer, rec arrow.RecordBatch) error {
	n := rec.NumRows()
	size := recordBytes(rec)
	if n <= 1 || size <= uploadBatchBytes {
		return w.Write(rec)
	}
	step := max(1, n*uploadBatchBytes/size)
	for off := int64(0); off < n; off += step {
		part := rec.NewSlice(off, min(off+step, n))
		err := w.Write(part)
		part.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// recordBytes is the size of the buffers of rec.
func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, c := range rec.Columns() {
		n += dataBytes(c.Data())
	}
	return n
}

func dataBytes(d arrow.ArrayData) int64 {
	if d == nil {
		return 0
	}
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	if dd, ok := d.Dictionary().(*array.Data); ok && dd != nil {
		n += dataBytes(dd)
	}
	return n
}
