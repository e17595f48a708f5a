package arrowipc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
)

// Message.fbs' MessageHeader values and MetadataVersion values read here.
const (
	ipcDictionaryBatch = 2
	ipcRecordBatch     = 3
	ipcMetadataV4      = 3
	ipcMetadataV5      = 4
)

// checkMessage checks the message in blk before arrow-go reads it: a
// record batch, or a dictionary batch if dict, whose every column must
// have its field node and the buffers the node needs, lying within the
// body and holding the node's values; compressed buffers must not
// decompress to more than limit bytes in all. With offsets, the offsets
// of binary and list columns are checked too (batchReader.offsets). It
// returns the bytes the buffers decompress to and the rows of the batch.
func (l *fileLayout) checkMessage(data []byte, blk block, dict, offsets bool, limit int64) (inflated, rows int64, err error) {
	want := byte(ipcRecordBatch)
	if dict {
		want = ipcDictionaryBatch
	}
	header, err := messageHeader(data, blk, want)
	if err != nil {
		return 0, 0, err
	}
	r := batchReader{body: data[blk.offset+blk.meta : blk.offset+blk.meta+blk.body], bodyLen: blk.body, limit: limit, offsets: offsets}
	if !dict {
		return checkRecordBatch(header, r, l.cols)
	}
	// DictionaryBatch: id 4, data 6 (a RecordBatch), isDelta 8.
	id, err := header.int64(4, 0)
	if err != nil {
		return 0, 0, err
	}
	vals, ok := l.dictVals[id]
	if !ok {
		return 0, 0, fmt.Errorf("dictionary %d, which no column has", id)
	}
	rb, ok, err := header.table(6)
	if err == nil && !ok {
		err = fmt.Errorf("dictionary %d has no values", id)
	}
	if err != nil {
		return 0, 0, err
	}
	if _, err := header.byte(8, 0); err != nil {
		return 0, 0, err
	}
	return checkRecordBatch(rb, r, []colLayout{vals})
}

// messageHeader returns the header of the message in blk, of type want.
// The metadata must be a Message (version 4, header_type 6, header 8,
// bodyLength 10, custom_metadata 12) whose body is the block's.
func messageHeader(data []byte, blk block, want byte) (fbTable, error) {
	meta := data[blk.offset : blk.offset+blk.meta]
	prefix := int64(4)
	size := binary.LittleEndian.Uint32(meta)
	if size == 0xffffffff { // continuation marker, then the size
		prefix = 8
		size = binary.LittleEndian.Uint32(meta[4:])
	}
	if size == 0 || int64(size) != blk.meta-prefix {
		return fbTable{}, fmt.Errorf("metadata of %d bytes in a block of %d", size, blk.meta)
	}
	msg, err := fbRoot(meta[prefix:])
	if err != nil {
		return fbTable{}, err
	}
	version, err := msg.int16(4, 0)
	if err == nil && version != ipcMetadataV4 && version != ipcMetadataV5 {
		err = fmt.Errorf("metadata version %d", version)
	}
	if err != nil {
		return fbTable{}, err
	}
	kind, err := msg.byte(6, 0)
	if err != nil {
		return fbTable{}, err
	}
	header, ok, err := msg.table(8)
	if err != nil {
		return fbTable{}, err
	}
	if kind != want || !ok {
		return fbTable{}, fmt.Errorf("message of type %d where one of type %d belongs", kind, want)
	}
	bodyLen, err := msg.int64(10, 0)
	if err != nil {
		return fbTable{}, err
	}
	if bodyLen != blk.body {
		return fbTable{}, fmt.Errorf("body of %d bytes in a block of %d", bodyLen, blk.body)
	}
	if err := msg.checkKeyValues(12); err != nil {
		return fbTable{}, err
	}
	return header, nil
}

// compressed reports whether any record batch (of those whose header can
// be read: checkMessage refuses the others) is compressed.
func (l *fileLayout) compressed(data []byte) bool {
	for _, blk := range l.batches {
		if rb, err := messageHeader(data, blk, ipcRecordBatch); err == nil {
			if _, ok, _ := rb.table(10); ok {
				return true
			}
		}
	}
	return false
}

// batchReader walks a RecordBatch's field nodes and buffers in the order
// arrow-go's loader takes them.
type batchReader struct {
	// body is the message's body, of bodyLen bytes; nil if only its
	// length is known (a message being received), and then compressed
	// buffers are refused.
	body    []byte
	bodyLen int64
	// offsets asks for the offsets of binary and list columns to be
	// checked: from 0 up, never decreasing, and within the data buffer
	// or the child column they index (not compressed ones). Readers of
	// values check them again (validateBatch); a file written from a
	// stream is checked this way once.
	offsets                bool
	nodes, bufs, variadic  fbVector
	inode, ibuf, ivariadic int
	compressed             bool
	codec                  byte
	inflated, limit        int64
	// shallow checks a batch without walking its columns (bounds), for
	// schemas with columns column does not read.
	shallow bool
}

// bounds checks what arrow-go allocates or slices by, whatever the
// columns: every field node's counts, every variadic buffer count, and
// every buffer (within the body, checked already, and within the memory
// limit once decompressed). It returns the bytes decompressed and rows.
func (r *batchReader) bounds(rows int64) (inflated, _ int64, err error) {
	for i := range r.nodes.n {
		n, nulls := r.nodes.int64(i, 0), r.nodes.int64(i, 1)
		if n < 0 || n > math.MaxInt32 || nulls < 0 || nulls > n {
			return 0, 0, fmt.Errorf("field node %d: %d values, %d nulls", i, n, nulls)
		}
	}
	for i := range r.variadic.n {
		if k := r.variadic.int64(i, 0); k < 0 || k > int64(r.bufs.n) {
			return 0, 0, fmt.Errorf("%d variadic buffers", k)
		}
	}
	for i := range r.bufs.n {
		if err := r.buffer(fmt.Sprintf("buffer %d:", i), 0, true); err != nil {
			return 0, 0, err
		}
	}
	return r.inflated, rows, nil
}

// checkRecordBatch checks a RecordBatch table (length 4, nodes 6, buffers
// 8, compression 10, variadicBufferCounts 12) against the columns it
// holds, with r (fresh: its body, limit and offsets set).
func checkRecordBatch(rb fbTable, r batchReader, cols []colLayout) (inflated, rows int64, err error) {
	rows, err = rb.int64(4, 0)
	if err != nil {
		return 0, 0, err
	}
	// The format lets a reader limit arrays to 2^31-1 values, as arrow-go's
	// int lengths do on 32-bit platforms.
	if rows < 0 || rows > math.MaxInt32 {
		return 0, 0, fmt.Errorf("batch of %d rows", rows)
	}
	if r.nodes, err = rb.vector(6, 16); err != nil {
		return 0, 0, fmt.Errorf("field nodes: %w", err)
	}
	if r.bufs, err = rb.vector(8, 16); err != nil {
		return 0, 0, fmt.Errorf("buffers: %w", err)
	}
	if r.variadic, err = rb.vector(12, 8); err != nil {
		return 0, 0, fmt.Errorf("variadic buffer counts: %w", err)
	}
	// BodyCompression: codec 4 (LZ4_FRAME, ZSTD), method 6 (BUFFER).
	comp, ok, err := rb.table(10)
	if err != nil {
		return 0, 0, fmt.Errorf("compression: %w", err)
	}
	if ok {
		codec, err := comp.byte(4, 0)
		if err != nil {
			return 0, 0, fmt.Errorf("compression: %w", err)
		}
		method, err := comp.byte(6, 0)
		if err != nil {
			return 0, 0, fmt.Errorf("compression: %w", err)
		}
		if codec > 1 || method != 0 {
			return 0, 0, fmt.Errorf("compression codec %d, method %d", codec, method)
		}
		if r.body == nil {
			return 0, 0, fmt.Errorf("compressed batches are not received")
		}
		r.compressed, r.codec = true, codec
	}
	// Buffer: offset int64, length int64, within the body.
	for i := range r.bufs.n {
		off, n := r.bufs.int64(i, 0), r.bufs.int64(i, 1)
		if off < 0 || n < 0 || off > r.bodyLen || n > r.bodyLen-off {
			return 0, 0, fmt.Errorf("buffer %d (offset %d, %d bytes) lies outside the %d-byte body", i, off, n, r.bodyLen)
		}
	}
	if r.shallow {
		return r.bounds(rows)
	}
	for _, c := range cols {
		if err := r.column(c, rows, true); err != nil {
			return 0, 0, fmt.Errorf("column %q: %w", c.name, err)
		}
	}
	return r.inflated, rows, nil
}

// column checks the field node and buffers of a column of rows values,
// or, for a child (!exact), of at least rows values, and its children's.
func (r *batchReader) column(c colLayout, rows int64, exact bool) error {
	var dataBufs int64
	if c.kind == layoutView {
		if r.ivariadic >= r.variadic.n {
			return fmt.Errorf("no count of variadic buffers")
		}
		dataBufs = r.variadic.int64(r.ivariadic, 0)
		r.ivariadic++
		if dataBufs < 0 || dataBufs > int64(r.bufs.n) {
			return fmt.Errorf("%d variadic buffers", dataBufs)
		}
	}
	// FieldNode: length int64, null_count int64.
	if r.inode >= r.nodes.n {
		return fmt.Errorf("no field node")
	}
	n, nulls := r.nodes.int64(r.inode, 0), r.nodes.int64(r.inode, 1)
	r.inode++
	switch {
	case exact && n != rows:
		return fmt.Errorf("%d values in a batch of %d rows", n, rows)
	case n < rows || n > math.MaxInt32:
		return fmt.Errorf("%d values where %d are needed", n, rows)
	}
	if nulls < 0 || nulls > n {
		return fmt.Errorf("%d nulls in %d values", nulls, n)
	}
	switch c.kind {
	case layoutNull:
		return nil
	case layoutUnread:
		return fmt.Errorf("union and run-end encoded columns are not read")
	}
	// arrow-go reads the validity bitmap only if there are nulls, and a
	// fixed-width column's values only if there are any.
	if err := r.buffer("validity", (n+7)/8, nulls > 0); err != nil {
		return err
	}
	switch c.kind {
	case layoutFixed:
		need := n * (c.bits / 8)
		if c.bits < 8 {
			need = (n*c.bits + 7) / 8
		}
		return r.buffer("values", need, n > 0)
	case layoutBinary, layoutList:
		need := int64(0)
		if n > 0 {
			need = (n + 1) * c.bits / 8
		}
		if err := r.buffer("offsets", need, true); err != nil {
			return err
		}
		last, err := r.lastOffset(n, c.bits)
		if err != nil {
			return err
		}
		if c.kind == layoutList {
			return r.child(c.children[0], last)
		}
		return r.buffer("data", last, true)
	case layoutListView:
		for _, what := range []string{"offsets", "sizes"} {
			if err := r.buffer(what, n*c.bits/8, true); err != nil {
				return err
			}
		}
		return r.child(c.children[0], 0)
	case layoutFixedList:
		return r.child(c.children[0], n*c.bits)
	case layoutStruct:
		for _, ch := range c.children {
			if err := r.child(ch, n); err != nil {
				return err
			}
		}
		return nil
	}
	if err := r.buffer("views", 16*n, true); err != nil {
		return err
	}
	for range dataBufs {
		if err := r.buffer("data", 0, true); err != nil {
			return err
		}
	}
	return nil
}

// child checks a child column of at least rows values.
func (r *batchReader) child(c colLayout, rows int64) error {
	if err := r.column(c, rows, false); err != nil {
		return fmt.Errorf("field %q: %w", c.name, err)
	}
	return nil
}

// buffer checks the next buffer, which must hold need bytes once
// decompressed if read; one not read is only skipped, as arrow-go does.
func (r *batchReader) buffer(what string, need int64, read bool) error {
	i := r.ibuf
	r.ibuf++
	if !read {
		return nil
	}
	if i >= r.bufs.n {
		return fmt.Errorf("no %s buffer", what)
	}
	off, size := r.bufs.int64(i, 0), r.bufs.int64(i, 1)
	if r.compressed && size > 0 {
		// An int64 prefix gives the length uncompressed, -1 if the rest
		// is not compressed.
		if size < 8 {
			return fmt.Errorf("compressed %s buffer of %d bytes", what, size)
		}
		switch n := int64(binary.LittleEndian.Uint64(r.body[off:])); {
		case n == -1:
			size -= 8
		case n < 0:
			return fmt.Errorf("%s buffer of %d bytes uncompressed", what, n)
		case n > r.limit-r.inflated:
			return fmt.Errorf("%s buffer of %d bytes uncompressed, beyond the %d bytes read at a time", what, n, r.limit)
		default:
			if err := checkCompressed(r.codec, r.body[off+8:off+size], n); err != nil {
				return fmt.Errorf("%s buffer: %w", what, err)
			}
			r.inflated += n
			size = n
		}
	}
	if size < need {
		return fmt.Errorf("%s buffer of %d bytes where %d are needed", what, size, need)
	}
	return nil
}

// lastOffset checks the n+1 offsets of bits bits each in the buffer just
// taken, if r.offsets and the buffer is not compressed: the first is not
// negative and none is less than the one before. It returns the last, the
// values the column's data or child must hold (0 if not checked).
func (r *batchReader) lastOffset(n, bits int64) (int64, error) {
	if !r.offsets || n == 0 || r.body == nil || r.compressed {
		return 0, nil
	}
	off := r.bufs.int64(r.ibuf-1, 0)
	return checkOffsets(r.body[off:off+(n+1)*bits/8], bits)
}

// checkOffsets checks that the offsets of bits bits each in b (n+1 of them)
// never go below the one before, the first below 0, and returns the last.
// The check runs without a branch per offset (it ORs their differences,
// whose sign bit a decrease sets) at memory speed: it reads every offset of
// every string column of every batch a reader or a handoff checks (a
// branch per offset took 3 % of a handoff's CPU); the slow loop only finds
// which offset is wrong.
func checkOffsets(b []byte, bits int64) (int64, error) {
	all := b
	var prev, bad int64
	if bits == 32 {
		for ; len(b) >= 16; b = b[16:] {
			o0 := int64(int32(binary.LittleEndian.Uint32(b)))
			o1 := int64(int32(binary.LittleEndian.Uint32(b[4:])))
			o2 := int64(int32(binary.LittleEndian.Uint32(b[8:])))
			o3 := int64(int32(binary.LittleEndian.Uint32(b[12:])))
			bad |= (o0 - prev) | (o1 - o0) | (o2 - o1) | (o3 - o2)
			prev = o3
		}
		for ; len(b) >= 4; b = b[4:] {
			o := int64(int32(binary.LittleEndian.Uint32(b)))
			bad |= o - prev
			prev = o
		}
	} else {
		// 64-bit differences could overflow: compare.
		for ; len(b) >= 8; b = b[8:] {
			o := int64(binary.LittleEndian.Uint64(b))
			if o < prev {
				bad = -1
			}
			prev = o
		}
	}
	if bad >= 0 {
		return prev, nil
	}
	return 0, offsetError(all, bits)
}

// offsetError says which offset in b is below the one before.
func offsetError(b []byte, bits int64) error {
	prev := int64(0)
	for i := int64(0); i < int64(len(b))*8/bits; i++ {
		var o int64
		if bits == 32 {
			o = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		} else {
			o = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		if o < prev {
			return fmt.Errorf("offset %d at value %d is below the one before (%d)", o, i, prev)
		}
		prev = o
	}
	return fmt.Errorf("an offset is below the one before")
}

// memoryLimit is the most a record batch of an Arrow IPC file may
// decompress to: half the memory available, and at most 16 GiB, so that a
// corrupt length cannot make the reader allocate terabytes.
func memoryLimit() int64 {
	limit := int64(1 << 34)
	if avail := memAvailable(); avail > 0 {
		limit = min(limit, avail/2)
	}
	return limit
}

// memAvailable returns the memory available on Linux (MemAvailable in
// /proc/meminfo, or what is left under the cgroup's memory.max if less), or
// 0 elsewhere.
func memAvailable() int64 {
	var avail int64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("MemAvailable:")); ok {
				kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))), 10, 64)
				if err == nil {
					avail = kb << 10
				}
			}
		}
	}
	max, err1 := os.ReadFile("/sys/fs/cgroup/memory.max")
	cur, err2 := os.ReadFile("/sys/fs/cgroup/memory.current")
	if err1 == nil && err2 == nil {
		m, err1 := strconv.ParseInt(string(bytes.TrimSpace(max)), 10, 64)
		c, err2 := strconv.ParseInt(string(bytes.TrimSpace(cur)), 10, 64)
		if err1 == nil && err2 == nil && m > c && (avail == 0 || m-c < avail) {
			avail = m - c
		}
	}
	return avail
}
