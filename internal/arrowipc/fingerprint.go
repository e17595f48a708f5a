package arrowipc

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/zeebo/xxh3"
)

// fingerprintVersion names the encoding Fingerprint hashes; a change of
// the encoding changes it, so that no fingerprint of the old one matches.
const fingerprintVersion = "lakehouse-arrowipc-fingerprint-v2"

// Fingerprint hashes the file's table independently of how its rows are
// cut into batches and of their order, and returns the hash (32 hex
// digits) and the row count. The hash covers the schema (each column's
// name and type) and every value, through a canonical binary encoding of
// the row (see appendValue), not its display text: the sum of one 128-bit
// hash per row. Equal tables (the same multiset of rows) give equal
// fingerprints; a table with another value anywhere, or a NULL where the
// other has a value, gives another one, up to the odds of a collision.
func (f *File) Fingerprint(ctx context.Context) (string, int64, error) {
	var hi, lo uint64
	var rows int64
	var buf []byte
	for i := range f.NumBatches() {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		rec, err := f.Batch(i)
		if err != nil {
			return "", 0, err
		}
		err = f.Guard(func() error {
			encs := make([]encoder, rec.NumCols())
			for c, col := range rec.Columns() {
				if encs[c], err = encoderOf(col); err != nil {
					return fmt.Errorf("column %q: %w", rec.ColumnName(c), err)
				}
			}
			for r := range int(rec.NumRows()) {
				buf = buf[:0]
				for _, enc := range encs {
					buf = enc(buf, r)
				}
				h := xxh3.Hash128(buf)
				hi += h.Hi
				lo += h.Lo
			}
			return nil
		})
		rows += rec.NumRows()
		rec.Release()
		if err != nil {
			return "", 0, err
		}
	}
	buf = append(buf[:0], fingerprintVersion...)
	for _, fd := range f.Schema().Fields() {
		buf = appendBytes(buf, []byte(fd.Name))
		buf = appendBytes(buf, []byte(fd.Type.String()))
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(rows))
	buf = binary.LittleEndian.AppendUint64(buf, hi)
	buf = binary.LittleEndian.AppendUint64(buf, lo)
	sum := xxh3.Hash128(buf).Bytes()
	return fmt.Sprintf("%x", sum[:]), rows, nil
}

// An encoder appends the canonical encoding of value i of an array to b.
type encoder func(b []byte, i int) []byte

// encoderOf returns the encoder of a's values. A value is encoded as a
// tag byte, 0 for NULL and 1 otherwise, followed by the value if it is not
// NULL: fixed-width values as their bytes (in the machine's order: the
// reader swaps big-endian files), booleans as a byte, strings and binary
// as a varint length and the bytes, lists as a varint length and the
// elements, structs as their fields, dictionary-encoded values as the
// value they stand for. With the column types the schema gives, the
// encoding of a row is unambiguous. Floats are encoded by their bits:
// -0.0 and 0.0 differ, as do NaNs of different payloads.
func encoderOf(a arrow.Array) (encoder, error) {
	if d, ok := a.(*array.Dictionary); ok {
		// The value's encoding has its own tag: a valid index of a NULL
		// in the dictionary is NULL too.
		dict, err := encoderOf(d.Dictionary())
		if err != nil {
			return nil, err
		}
		return func(b []byte, i int) []byte {
			if d.IsNull(i) {
				return append(b, 0)
			}
			return dict(b, d.GetValueIndex(i))
		}, nil
	}
	value, err := valueEncoderOf(a)
	if err != nil {
		return nil, err
	}
	if a.NullN() == 0 {
		return func(b []byte, i int) []byte { return value(append(b, 1), i) }, nil
	}
	return func(b []byte, i int) []byte {
		if a.IsNull(i) {
			return append(b, 0)
		}
		return value(append(b, 1), i)
	}, nil
}

// valueEncoderOf returns the encoder of a's non-NULL values, or, for the
// null type, an encoder of NULLs.
func valueEncoderOf(a arrow.Array) (encoder, error) {
	switch a := a.(type) {
	case *array.Null:
		return func(b []byte, _ int) []byte { return append(b, 0) }, nil
	case *array.Boolean:
		return func(b []byte, i int) []byte {
			if a.Value(i) {
				return append(b, 1)
			}
			return append(b, 0)
		}, nil
	case interface{ Value(int) string }:
		return func(b []byte, i int) []byte {
			s := a.Value(i)
			return append(binary.AppendUvarint(b, uint64(len(s))), s...)
		}, nil
	case interface{ Value(int) []byte }:
		return func(b []byte, i int) []byte { return appendBytes(b, a.Value(i)) }, nil
	case array.ExtensionArray:
		return valueEncoderOf(a.Storage())
	case array.ListLike:
		elem, err := encoderOf(a.ListValues())
		if err != nil {
			return nil, err
		}
		return func(b []byte, i int) []byte {
			start, end := a.ValueOffsets(i)
			b = binary.AppendUvarint(b, uint64(end-start))
			for j := start; j < end; j++ {
				b = elem(b, int(j))
			}
			return b
		}, nil
	case *array.Struct:
		fields := make([]encoder, a.NumField())
		for j := range fields {
			var err error
			if fields[j], err = encoderOf(a.Field(j)); err != nil {
				return nil, err
			}
		}
		return func(b []byte, i int) []byte {
			for _, f := range fields {
				b = f(b, i)
			}
			return b
		}, nil
	}
	fw, ok := a.DataType().(arrow.FixedWidthDataType)
	if !ok || fw.BitWidth()%8 != 0 || len(a.Data().Buffers()) < 2 {
		return nil, fmt.Errorf("cannot fingerprint values of type %s", a.DataType())
	}
	w, off := fw.BitWidth()/8, a.Data().Offset()
	var vals []byte
	if buf := a.Data().Buffers()[1]; buf != nil {
		vals = buf.Bytes()
	}
	return func(b []byte, i int) []byte { return append(b, vals[(off+i)*w:(off+i+1)*w]...) }, nil
}

// appendBytes appends a varint length and v.
func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}
