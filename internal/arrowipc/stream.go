package arrowipc

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// An Arrow IPC stream carries the messages an IPC file holds, less the
// footer: a file's batches are sent as they lie in it (File.Message), and
// a received stream is written into a file as it arrives (StreamFile),
// without decoding a batch or copying it through arrow-go.

// Message returns the header (the Message flatbuffer, padded) and the
// body of record batch i as they lie in the mapping, once the header is
// checked against the schema (not the values): what an Arrow IPC stream
// of the file sends. The slices are valid until Close; reading them
// outside Guard faults if the file is truncated meanwhile. Errors are
// classified as Open's are.
func (f *File) Message(i int) (header, body []byte, err error) {
	blk := f.layout.batches[i]
	err = f.Guard(func() error {
		if _, _, err := f.layout.checkMessage(f.data, blk, false, false, f.layout.limit); err != nil {
			return fmt.Errorf("record batch %d: %w", i, err)
		}
		prefix := int64(4)
		if binary.LittleEndian.Uint32(f.data[blk.offset:]) == 0xffffffff {
			prefix = 8
		}
		header = f.data[blk.offset+prefix : blk.offset+blk.meta]
		body = f.data[blk.offset+blk.meta : blk.offset+blk.meta+blk.body]
		return nil
	})
	return header, body, err
}

// Message.fbs' MessageHeader value of a schema.
const ipcSchema = 1

// StreamFile writes the messages of an Arrow IPC stream into an Arrow IPC
// file as they arrive, each header checked (against the schema, which
// comes first) before its message is written, with large sequential
// writes of the body's pieces. Close writes the footer and checks the
// file once more, offsets included (batchReader.offsets), so that what a
// peer sends cannot make an invalid file: values (UTF-8, null counts) are
// left to whoever reads them (File.Batch validates them). Dictionary
// batches must not repeat an id (a file cannot replace a dictionary), and
// compressed or big-endian batches are refused. Its methods are not safe
// for concurrent use.
type StreamFile struct {
	f    *os.File
	path string
	off  int64 // where the next message goes
	// schema is the schema message's flatbuffer, which the footer
	// embeds; schemaPos is where its Schema table lies in it.
	schema    []byte
	schemaPos uint32
	checker   Checker
	dicts     []block
	batches   []block
	reused    bool     // ReuseStreamFile's: cut to size on Close
	iov       [][]byte // reused by Write
}

// CreateStreamFile creates the file at path (exclusively) for the
// messages of a stream. The caller calls Close, or Abort to remove it.
func CreateStreamFile(path string) (*StreamFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return startStreamFile(f, path, false)
}

// ReuseStreamFile is CreateStreamFile over the existing regular file at
// path, written over from its start and cut to what was written on
// Close: on tmpfs, writing over a file's pages costs half of allocating
// new ones (flight.Spares). Nothing of what the file held before stays
// past the end of what Close checks.
func ReuseStreamFile(path string) (*StreamFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return startStreamFile(f, path, true)
}

// startStreamFile writes the file's magic at the start of f, opened at
// path.
func startStreamFile(f *os.File, path string, reused bool) (*StreamFile, error) {
	w := &StreamFile{f: f, path: path, checker: Checker{Name: path}, reused: reused}
	if err := w.write([][]byte{magic, make([]byte, 2)}); err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

// Write checks the message of header (a Message flatbuffer) and body (its
// pieces, bodyLen bytes in all) and appends it to the file. The first
// message must be the schema. A message that is not valid is an error of
// class InvalidArgument, and the file is then not to be closed but
// aborted. Write keeps no reference to header or body.
func (w *StreamFile) Write(header []byte, body [][]byte, bodyLen int64) error {
	kind, err := w.checker.Check(header, nil, bodyLen)
	if err != nil {
		return err
	}
	if kind == ipcSchema {
		w.schema = append([]byte(nil), header...)
		w.schemaPos = w.checker.schemaPos
	}
	// The encapsulated message: a continuation marker, the length of the
	// padded metadata, the metadata, then the body (a multiple of 8).
	meta := (len(header) + 7) &^ 7
	var prefix [8]byte
	binary.LittleEndian.PutUint32(prefix[:], 0xffffffff)
	binary.LittleEndian.PutUint32(prefix[4:], uint32(meta))
	w.iov = append(w.iov[:0], prefix[:], header, zeros[:meta-len(header)])
	w.iov = append(w.iov, body...)
	blk := block{offset: w.off, meta: 8 + int64(meta), body: bodyLen}
	if err := w.write(w.iov); err != nil {
		return err
	}
	clear(w.iov) // no references to the caller's buffers
	switch kind {
	case ipcDictionaryBatch:
		w.dicts = append(w.dicts, blk)
	case ipcRecordBatch:
		w.batches = append(w.batches, blk)
	}
	return nil
}

// zeros pads metadata to 8 bytes.
var zeros [8]byte

// Checker checks the messages of an Arrow IPC stream in order, before
// arrow-go reads them, as Open checks a file's: the first must be a
// schema, whose fields (nested ones included) its flatbuffer bounds;
// record and dictionary batches must have, for every column, the field
// node and buffers it needs, lying within the body. arrow-go trusts the
// counts and sizes it reads there: one crafted schema message can make it
// allocate tens of GiB or recurse without end, which no recover catches.
// Compressed buffers are checked against the memory there is when the body
// is given, refused when only its length is. Big-endian batches are
// refused. Without Dictionaries, a dictionary batch must come before every
// record batch, once per id (what a file holds). Errors are of class
// InvalidArgument. The zero Checker is ready; it is not safe for
// concurrent use.
type Checker struct {
	// Name names the stream in errors (a file's path, a call).
	Name string
	// Dictionaries lets dictionary batches come again for an id (as
	// replacements or deltas) and after record batches, as a stream may.
	Dictionaries bool
	// AnyType takes columns of the types a file import does not read
	// (unions, run-end encoded): with one in the schema, batches are
	// checked for what arrow-go allocates or slices by (field nodes,
	// buffers within the body and the memory limit, variadic counts), not
	// column by column.
	AnyType bool

	// schemaOnly: the schema is all that is read (CheckSchema), so its
	// byte order does not matter.
	schemaOnly bool
	layout     *fileLayout
	schemaPos  uint32 // where the Schema table lies in the schema message
	dictIDs    map[int64]bool
	messages   int
	batches    int
	rows       int64
	scratch    []byte
}

// Check checks the next message of the stream, its header (a Message
// flatbuffer) and body (bodyLen bytes; body nil if only its length is at
// hand), and returns its type.
func (c *Checker) Check(header, body []byte, bodyLen int64) (kind byte, err error) {
	kind, err = c.check(header, body, bodyLen)
	if err != nil {
		return 0, errdefs.New(errdefs.ErrInvalidArgument, "message %d of the Arrow IPC stream: %v", c.messages, err)
	}
	c.messages++
	return kind, nil
}

func (c *Checker) check(header, body []byte, bodyLen int64) (byte, error) {
	if bodyLen < 0 || bodyLen%8 != 0 {
		return 0, fmt.Errorf("body of %d bytes, not a multiple of 8", bodyLen)
	}
	if body != nil && int64(len(body)) != bodyLen {
		return 0, fmt.Errorf("body of %d bytes where its message says %d", len(body), bodyLen)
	}
	if len(header) > 1<<30 {
		return 0, fmt.Errorf("metadata of %d bytes", len(header))
	}
	// messageHeader reads the message as it lies in a file.
	data := binary.LittleEndian.AppendUint32(c.scratch[:0], 0xffffffff)
	data = binary.LittleEndian.AppendUint32(data, uint32(len(header)))
	data = append(data, header...)
	c.scratch = data
	blk := block{offset: 0, meta: int64(len(data)), body: bodyLen}
	if c.layout == nil {
		msg, err := messageHeader(data, blk, ipcSchema)
		if err != nil {
			return 0, fmt.Errorf("the stream does not start with a schema: %w", err)
		}
		if bodyLen != 0 {
			return 0, fmt.Errorf("schema with a body of %d bytes", bodyLen)
		}
		l := &fileLayout{dictVals: map[int64]colLayout{}, limit: memoryLimit(), fieldsLeft: len(header) / 8}
		if err := l.readSchema(c.Name, msg); err != nil {
			return 0, err
		}
		if l.bigEndian && !c.schemaOnly {
			return 0, fmt.Errorf("big-endian batches are not received")
		}
		c.layout = l
		c.schemaPos = uint32(msg.Pos)
		c.dictIDs = map[int64]bool{}
		return ipcSchema, nil
	}
	// A record batch, else a dictionary batch: the error of the first.
	r := batchReader{body: body, bodyLen: bodyLen, limit: c.layout.limit, shallow: c.AnyType && c.layout.unread}
	rb, rerr := messageHeader(data, blk, ipcRecordBatch)
	if rerr == nil {
		if len(c.dictIDs) < len(c.layout.dictVals) {
			return 0, fmt.Errorf("record batch before the dictionaries of its columns")
		}
		_, rows, err := checkRecordBatch(rb, r, c.layout.cols)
		if err == nil {
			c.rows += rows
			c.batches++
		}
		return ipcRecordBatch, err
	}
	d, err := messageHeader(data, blk, ipcDictionaryBatch)
	if err != nil {
		return 0, rerr
	}
	// DictionaryBatch: id 4, data 6, isDelta 8.
	id, err := d.int64(4, 0)
	if err != nil {
		return 0, err
	}
	vals, ok := c.layout.dictVals[id]
	if !ok {
		return 0, fmt.Errorf("dictionary %d, which no column has", id)
	}
	delta, err := d.byte(8, 0)
	if err != nil {
		return 0, err
	}
	if !c.Dictionaries {
		if c.dictIDs[id] {
			return 0, fmt.Errorf("dictionary %d sent again: a file holds one per column", id)
		}
		if delta != 0 {
			return 0, fmt.Errorf("delta of dictionary %d: a file holds one per column", id)
		}
		if c.batches > 0 {
			return 0, fmt.Errorf("dictionary %d after a record batch", id)
		}
	} else if delta != 0 && !c.dictIDs[id] {
		return 0, fmt.Errorf("delta of dictionary %d before the dictionary", id)
	}
	dr, ok, err := d.table(6)
	if err == nil && !ok {
		err = fmt.Errorf("dictionary %d has no values", id)
	}
	if err != nil {
		return 0, err
	}
	if _, _, err := checkRecordBatch(dr, r, []colLayout{vals}); err != nil {
		return 0, err
	}
	c.dictIDs[id] = true
	return ipcDictionaryBatch, nil
}

// Close writes the footer, closes the file and checks it: its footer,
// every message's header and the offsets of its batches. It returns the
// rows of the file. On error the file is removed. ctx stops the check.
func (w *StreamFile) Close(ctx context.Context) (rows int64, err error) {
	if w.schema == nil {
		w.Abort()
		return 0, errdefs.New(errdefs.ErrInvalidArgument, "the Arrow IPC stream ended before its schema")
	}
	footer := w.footer()
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], uint32(len(footer)))
	if err := w.write([][]byte{footer, tail[:], magic}); err != nil {
		w.Abort()
		return 0, err
	}
	if w.reused {
		if err := w.f.Truncate(w.off); err != nil {
			w.Abort()
			return 0, err
		}
	}
	if err := w.f.Close(); err != nil {
		w.f = nil
		w.Abort()
		return 0, err
	}
	w.f = nil
	rows, err = Check(ctx, w.path)
	if err == nil && rows != w.checker.rows {
		err = errdefs.New(errdefs.ErrInternal, "file %s holds %d rows of the %d received", w.path, rows, w.checker.rows)
	}
	if err != nil {
		w.Abort()
		return 0, err
	}
	return rows, nil
}

// Check checks the Arrow IPC file at path as StreamFile.Close checks
// what it wrote: its magic bytes, footer, schema and dictionaries (Open),
// then every record batch's header and offsets, not the values (which
// File.Batch validates). It returns the rows of the file. For a file that
// came whole from a peer (flight's HTTP handoff).
func Check(ctx context.Context, path string) (rows int64, err error) {
	f, err := Open(path, Options{})
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.rows(ctx, true)
}

// Abort closes the file and removes it.
func (w *StreamFile) Abort() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	os.Remove(w.path)
}

// write writes bufs at the end of the file.
func (w *StreamFile) write(bufs [][]byte) error {
	n, err := writev(w.f, bufs)
	w.off += n
	return err
}

// footer encodes the file's Footer flatbuffer (version 4, schema 6,
// dictionaries 8, recordBatches 10), its schema the Schema table of the
// stream's schema message, copied whole: a flatbuffer's offsets are
// relative, so the table reads the same at an 8-aligned position of
// another buffer.
//
//	0  root offset → table at 16
//	4  vtable: 12 bytes, a table of 20, fields at 16, 4, 8, 12
//	16 table: vtable offset, schema, dictionaries, recordBatches, version
//	36 the dictionaries' Blocks, then the record batches' (each vector's
//	   length 4 bytes before an 8-aligned start)
//	…  the schema message, 8-aligned
func (w *StreamFile) footer() []byte {
	le := binary.LittleEndian
	const table = 16
	align := func(n int) int { return (n + 7) &^ 7 }
	dicts := align(table+20+4) - 4
	batches := align(dicts+4+24*len(w.dicts)+4) - 4
	schema := align(batches + 4 + 24*len(w.batches))
	b := make([]byte, schema+len(w.schema))
	le.PutUint32(b[0:], table)
	for i, v := range []uint16{12, 20, 16, 4, 8, 12} {
		le.PutUint16(b[4+2*i:], v)
	}
	le.PutUint32(b[table:], table-4)
	le.PutUint32(b[table+4:], uint32(schema+int(w.schemaPos)-(table+4)))
	le.PutUint32(b[table+8:], uint32(dicts-(table+8)))
	le.PutUint32(b[table+12:], uint32(batches-(table+12)))
	le.PutUint16(b[table+16:], ipcMetadataV5)
	for _, v := range []struct {
		at     int
		blocks []block
	}{{dicts, w.dicts}, {batches, w.batches}} {
		le.PutUint32(b[v.at:], uint32(len(v.blocks)))
		for i, blk := range v.blocks {
			p := v.at + 4 + 24*i
			le.PutUint64(b[p:], uint64(blk.offset))
			le.PutUint32(b[p+8:], uint32(blk.meta))
			le.PutUint64(b[p+16:], uint64(blk.body))
		}
	}
	copy(b[schema:], w.schema)
	return b
}

// CheckSchema checks b, an Arrow IPC stream that starts with a schema
// message, as Checker checks a stream's first message: what a Parquet
// file's ARROW:schema holds, which arrow-go's Parquet reader reads before
// anything else (its message's body length alone can make it allocate
// tens of GiB). The messages after the schema are not read. Errors are of
// class InvalidArgument.
func CheckSchema(b []byte) error {
	meta, err := firstMessage(b)
	if err != nil {
		return errdefs.New(errdefs.ErrInvalidArgument, "the Arrow schema: %v", err)
	}
	c := Checker{schemaOnly: true}
	_, err = c.Check(meta, nil, 0)
	return err
}

// firstMessage returns the metadata of the first message of the IPC
// stream b: after a continuation marker and its length (or its length
// alone, as streams before Arrow 0.15 wrote it).
func firstMessage(b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%d bytes, not an IPC stream", len(b))
	}
	n, rest := binary.LittleEndian.Uint32(b), b[4:]
	if n == 0xffffffff {
		if len(rest) < 4 {
			return nil, fmt.Errorf("%d bytes, not an IPC stream", len(b))
		}
		n, rest = binary.LittleEndian.Uint32(rest), rest[4:]
	}
	if uint64(n) > uint64(len(rest)) {
		return nil, fmt.Errorf("a message of %d bytes in a stream of %d", n, len(b))
	}
	return rest[:n], nil
}
