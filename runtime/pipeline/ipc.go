package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// writeIPC writes every batch of r to path as an Arrow IPC file
// (uncompressed, so readers map it without decoding) and returns the row
// count. The file appears under its name only when complete.
func writeIPC(ctx context.Context, path string, r array.RecordReader) (int64, error) {
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
	// DuckDB reader combines them into batches of about batchRows rows,
	// straight from its vectors. Reading (DuckDB's scan and that copy)
	// runs beside writing: two cores' worth of work overlap.
	if c, ok := r.(interface{ Combine(rows int) }); ok {
		c.Combine(batchRows)
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

// batchRows is the size of the batches writeIPC writes.
const batchRows = 128 << 10

// mapped is an Arrow IPC file memory-mapped read-only: its batches point
// into the mapping, so reading them copies nothing. A file with
// dictionary-encoded columns (pandas categoricals) is read through
// ipc.NewFileReader over the mapping instead, which copies one batch at a
// time: arrow-go's mapped reader cannot read dictionaries (it panics on
// its uninitialized dictionary memo).
type mapped struct {
	data []byte
	r    *ipc.FileReader
}

func openMapped(path string) (m *mapped, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	var r *ipc.FileReader
	err = guardIPC(path, func() error {
		var err error
		if r, err = ipc.NewFileReader(bytes.NewReader(data)); err != nil {
			return err
		}
		if !hasDictionary(r.Schema().Fields()) {
			r.Close()
			r, err = ipc.NewMappedFileReader(data)
		}
		return err
	})
	if err != nil {
		syscall.Munmap(data)
		return nil, fmt.Errorf("%s is not an Arrow IPC file: %w", path, err)
	}
	return &mapped{data: data, r: r}, nil
}

// guardIPC runs fn, which reads an IPC file, turning a panic of the
// reader (corrupt data, a fault in a mapping) into an error.
func guardIPC(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reading %s: %v", path, p)
		}
	}()
	return fn()
}

// hasDictionary reports whether any field, at any depth, is
// dictionary-encoded.
func hasDictionary(fields []arrow.Field) bool {
	for _, fd := range fields {
		if fd.Type.ID() == arrow.DICTIONARY {
			return true
		}
		if nt, ok := fd.Type.(arrow.NestedType); ok && hasDictionary(nt.Fields()) {
			return true
		}
	}
	return false
}

func (m *mapped) Close() {
	m.r.Close()
	syscall.Munmap(m.data)
}

// reader streams the file's batches.
func (m *mapped) reader() array.RecordReader { return &fileRecords{f: m.r} }

type fileRecords struct {
	f   *ipc.FileReader
	i   int
	cur arrow.RecordBatch
	err error
}

func (r *fileRecords) Schema() *arrow.Schema { return r.f.Schema() }
func (r *fileRecords) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil || r.i >= r.f.NumRecords() {
		return false
	}
	rec, err := r.f.RecordBatch(r.i)
	if err != nil {
		r.err = err
		return false
	}
	r.i++
	rec.Retain()
	r.cur = rec
	return true
}
func (r *fileRecords) RecordBatch() arrow.RecordBatch { return r.cur }
func (r *fileRecords) Record() arrow.RecordBatch      { return r.cur }
func (r *fileRecords) Err() error                     { return r.err }
func (r *fileRecords) Retain()                        {}
func (r *fileRecords) Release() {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}

// preview renders the first n rows of an IPC file (of total rows) as a
// small text table.
func preview(path string, n int, total int64) (text string, err error) {
	err = guardIPC(path, func() error {
		text, err = previewMapped(path, n, total)
		return err
	})
	return text, err
}

func previewMapped(path string, n int, total int64) (string, error) {
	m, err := openMapped(path)
	if err != nil {
		return "", err
	}
	defer m.Close()
	schema := m.r.Schema()
	head := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		head[i] = f.Name
	}
	rows := [][]string{head}
	for i := 0; i < m.r.NumRecords() && len(rows) <= n; i++ {
		rec, err := m.r.RecordBatch(i)
		if err != nil {
			return "", err
		}
		for r := 0; r < int(rec.NumRows()) && len(rows) <= n; r++ {
			row := make([]string, rec.NumCols())
			for c := range row {
				row[c] = query.TableCell(query.FormatValue(rec.Column(c), r), 40)
			}
			rows = append(rows, row)
		}
	}
	width := make([]int, len(head))
	for _, r := range rows {
		for i, v := range r {
			width[i] = max(width[i], utf8.RuneCountInString(v))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(v)
			b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(v)))
		}
		b.WriteString("\n")
	}
	if total > int64(len(rows)-1) {
		fmt.Fprintf(&b, "(%d of %d rows)\n", len(rows)-1, total)
	}
	return b.String(), nil
}

// fingerprint hashes an IPC file's rows independently of their order: the
// sum of one 64-bit hash per row (column names and types included), so two
// runs that produce the same rows in another order match.
func fingerprint(path string) (fp string, rows int64, err error) {
	err = guardIPC(path, func() error {
		fp, rows, err = fingerprintMapped(path)
		return err
	})
	return fp, rows, err
}

func fingerprintMapped(path string) (string, int64, error) {
	m, err := openMapped(path)
	if err != nil {
		return "", 0, err
	}
	defer m.Close()
	schema := m.r.Schema()
	h := fnv.New64a()
	for _, f := range schema.Fields() {
		h.Write([]byte(f.Name + ":" + f.Type.String() + ";"))
	}
	schemaHash := h.Sum64()
	var sum uint64
	var rows int64
	var buf []byte
	for i := 0; i < m.r.NumRecords(); i++ {
		rec, err := m.r.RecordBatch(i)
		if err != nil {
			return "", 0, err
		}
		n := int(rec.NumRows())
		hashes := make([]uint64, n)
		for r := range hashes {
			hashes[r] = 14695981039346656037
		}
		for c := 0; c < int(rec.NumCols()); c++ {
			col := rec.Column(c)
			for r := 0; r < n; r++ {
				buf = appendValue(buf[:0], col, r)
				x := hashes[r]
				for _, by := range buf {
					x ^= uint64(by)
					x *= 1099511628211
				}
				hashes[r] = x ^ uint64(c+1)*0x9e3779b97f4a7c15
			}
		}
		for _, x := range hashes {
			sum += mix(x)
		}
		rows += int64(n)
	}
	return fmt.Sprintf("%016x", sum^schemaHash), rows, nil
}

func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	return x ^ x>>33
}

func appendValue(b []byte, col arrow.Array, i int) []byte {
	if col.IsNull(i) {
		return append(b, 0xff, 0x00)
	}
	switch a := col.(type) {
	case *array.Int64:
		return binary.LittleEndian.AppendUint64(b, uint64(a.Value(i)))
	case *array.Int32:
		return binary.LittleEndian.AppendUint64(b, uint64(a.Value(i)))
	case *array.Float64:
		v := a.Value(i)
		if v == 0 {
			v = 0 // -0 and 0 alike
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	case *array.String:
		return append(append(b, a.Value(i)...), 0)
	case *array.LargeString:
		return append(append(b, a.Value(i)...), 0)
	case *array.Boolean:
		if a.Value(i) {
			return append(b, 1)
		}
		return append(b, 0)
	}
	return append(append(b, query.FormatValue(col, i)...), 0)
}
