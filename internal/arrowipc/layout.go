package arrowipc

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Before arrow-go parses an Arrow IPC file's flatbuffers, readLayout
// checks the footer and the schema in it, and checkMessage (message.go)
// checks each dictionary and record batch message, with fbTable's bounds
// checks. arrow-go's reader trusts what it reads: a corrupt vector length
// in the schema becomes make([]arrow.Field, n) with n in the billions, and
// a corrupt compressed buffer's length prefix an allocation of terabytes,
// both fatal errors that no recover catches. The checks follow the
// flatbuffers schema of Arrow's format/File.fbs, Schema.fbs and
// Message.fbs: each accessor names the field's vtable slot (4 for the
// first field, 6 for the second, ...) as arrow-go's generated
// internal/flatbuf code does.

// maxDepth is how deeply fields may nest (arrow-go's reader stops at
// the same depth).
const maxDepth = 64

// fileLayout is what an Arrow IPC file's footer says, checked: where its
// messages lie and how a record batch lays out each column.
type fileLayout struct {
	end       int64 // where the footer starts: every message lies before it
	dicts     []block
	batches   []block
	cols      []colLayout
	dictVals  map[int64]colLayout // dictionary id → the layout of its values
	bigEndian bool
	// limit is the most a record batch, or all the dictionaries together,
	// may decompress to.
	limit int64
	// fieldsLeft bounds the fields the schema may have, nested ones
	// included, so that fields shared between parents cannot make the walk
	// exponential.
	fieldsLeft int
	// unread: some column (a union, run-end encoded) is of a layout
	// batchReader.column does not read.
	unread bool
}

// block is where a message lies in the file.
type block struct {
	offset, meta, body int64
}

// layoutKind is how a record batch lays out a column's values.
type layoutKind uint8

const (
	layoutNull      layoutKind = iota // a node and no buffers
	layoutFixed                       // validity and bits a value
	layoutBinary                      // validity, offsets of bits each, data
	layoutView                        // validity, 16-byte views, variadic data buffers
	layoutList                        // validity, offsets of bits each; a child (lists, maps)
	layoutListView                    // validity, offsets and sizes of bits each; a child
	layoutFixedList                   // validity; a child of bits values a list
	layoutStruct                      // validity; children of as many values
	layoutUnread                      // unions, run-end encoded: not read
)

// colLayout is how a record batch lays out one column (or a child of one).
type colLayout struct {
	name string
	kind layoutKind
	// bits is, for layoutFixed, the bits of a value; for layoutBinary,
	// layoutList and layoutListView, the bits of an offset; for
	// layoutFixedList, the values of a list.
	bits     int64
	children []colLayout
}

// readLayout checks the footer of the Arrow IPC file data, whose magic
// bytes checkMagic has checked. A file it cannot read gives an
// unclassified error (the caller's guard calls it corrupt).
func readLayout(path string, data []byte) (*fileLayout, error) {
	n := int64(len(data))
	if n < 2*int64(len(magic))+4 {
		return nil, fmt.Errorf("file of %d bytes", n)
	}
	end := n - int64(len(magic)) - 4
	footerLen := int64(binary.LittleEndian.Uint32(data[end:]))
	if footerLen < 4 || footerLen > end-8 {
		return nil, fmt.Errorf("footer of %d bytes in a file of %d bytes", footerLen, n)
	}
	end -= footerLen
	footer, err := fbRoot(data[end : end+footerLen])
	if err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	l := &fileLayout{end: end, dictVals: map[int64]colLayout{}, limit: memoryLimit(), fieldsLeft: int(footerLen / 8)}
	// Footer: version 4, schema 6, dictionaries 8, recordBatches 10,
	// custom_metadata 12.
	schema, ok, err := footer.table(6)
	if err == nil && !ok {
		err = fmt.Errorf("no schema")
	}
	if err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	if err := l.readSchema(path, schema); err != nil {
		return nil, err
	}
	if l.dicts, err = l.readBlocks(footer, 8); err != nil {
		return nil, fmt.Errorf("footer: dictionaries: %w", err)
	}
	if l.batches, err = l.readBlocks(footer, 10); err != nil {
		return nil, fmt.Errorf("footer: record batches: %w", err)
	}
	if err := footer.checkKeyValues(12); err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	return l, nil
}

// readBlocks reads the vector of Block structs (offset int64, metaDataLength
// int32, 4 bytes of padding, bodyLength int64) in slot of the footer. Each
// must lie, 8-byte aligned, between the leading magic bytes and the footer.
func (l *fileLayout) readBlocks(footer fbTable, slot uint32) ([]block, error) {
	v, err := footer.vector(slot, 24)
	if err != nil {
		return nil, err
	}
	blocks := make([]block, v.n)
	for i := range blocks {
		p := v.at(i)
		b := block{
			offset: int64(binary.LittleEndian.Uint64(v.b[p:])),
			meta:   int64(int32(binary.LittleEndian.Uint32(v.b[p+8:]))),
			body:   int64(binary.LittleEndian.Uint64(v.b[p+16:])),
		}
		if b.offset < 8 || b.meta < 8 || b.body < 0 || (b.offset|b.meta|b.body)%8 != 0 ||
			b.offset > l.end || b.meta > l.end-b.offset || b.body > l.end-b.offset-b.meta {
			return nil, fmt.Errorf("block %d (offset %d, %d bytes of metadata, %d of body) does not lie aligned within the %d bytes before the footer",
				i, b.offset, b.meta, b.body, l.end)
		}
		blocks[i] = b
	}
	return blocks, nil
}

// readSchema checks a Schema table: endianness 4, fields 6,
// custom_metadata 8, features 10.
func (l *fileLayout) readSchema(path string, schema fbTable) error {
	endian, err := schema.int16(4, 0)
	if err == nil && endian != 0 && endian != 1 {
		err = fmt.Errorf("endianness %d", endian)
	}
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	l.bigEndian = endian == 1
	fields, err := schema.vector(6, 4)
	if err != nil {
		return fmt.Errorf("schema: fields: %w", err)
	}
	if fields.n > l.fieldsLeft {
		return fmt.Errorf("schema: %d fields in a footer of %d fields at most", fields.n, l.fieldsLeft)
	}
	l.cols = make([]colLayout, fields.n)
	for i := range fields.n {
		f, err := fields.table(i)
		if err != nil {
			return fmt.Errorf("schema: field %d: %w", i, err)
		}
		if l.cols[i], err = l.readField(path, f, "", 0); err != nil {
			return err
		}
	}
	if err := schema.checkKeyValues(8); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if _, err := schema.vector(10, 8); err != nil {
		return fmt.Errorf("schema: features: %w", err)
	}
	return nil
}

// readField checks a Field table (name 4, nullable 6, type_type 8, type 10,
// dictionary 12, children 14, custom_metadata 16) and its children, and
// returns the field's layout. top names the column it is part of ("" for a
// column itself).
func (l *fileLayout) readField(path string, f fbTable, top string, depth int) (colLayout, error) {
	if l.fieldsLeft--; l.fieldsLeft < 0 {
		return colLayout{}, fmt.Errorf("schema: more fields than its footer can hold")
	}
	if depth > maxDepth {
		return colLayout{}, fmt.Errorf("schema: column %q nests more than %d deep", top, maxDepth)
	}
	name, err := f.str(4)
	if err == nil && !utf8.Valid(name) {
		err = fmt.Errorf("%q is not UTF-8", name)
	}
	if err != nil {
		return colLayout{}, fmt.Errorf("schema: field name: %w", err)
	}
	col := colLayout{name: string(name)}
	if top == "" {
		top = col.name
	}
	wrap := func(err error) error { return fmt.Errorf("schema: field %q of column %q: %w", col.name, top, err) }
	if _, err := f.byte(6, 0); err != nil {
		return col, wrap(err)
	}
	typeType, err := f.byte(8, 0)
	if err != nil {
		return col, wrap(err)
	}
	typ, ok, err := f.table(10)
	if err == nil && !ok {
		err = fmt.Errorf("no type")
	}
	if err != nil {
		return col, wrap(err)
	}
	if col.kind, col.bits, err = layoutOf(typeType, typ); err != nil {
		return col, wrap(err)
	}
	if col.kind == layoutUnread {
		l.unread = true
	}
	children, err := f.vector(14, 4)
	if err != nil {
		return col, wrap(fmt.Errorf("children: %w", err))
	}
	if want, ok := childCount[col.kind]; ok && children.n != want || col.kind == layoutFixed && children.n != 0 {
		return col, wrap(fmt.Errorf("%d children", children.n))
	}
	if col.kind == layoutStruct || col.kind == layoutUnread {
		col.children = make([]colLayout, 0, min(children.n, l.fieldsLeft))
	}
	for i := range children.n {
		c, err := children.table(i)
		if err != nil {
			return col, wrap(fmt.Errorf("child %d: %w", i, err))
		}
		child, err := l.readField(path, c, top, depth+1)
		if err != nil {
			return col, err
		}
		col.children = append(col.children, child)
	}
	if err := f.checkKeyValues(16); err != nil {
		return col, wrap(err)
	}
	enc, ok, err := f.table(12)
	if err != nil {
		return col, wrap(err)
	}
	if !ok {
		return col, nil
	}
	if len(col.children) > 0 || col.kind == layoutUnread {
		return col, errdefs.WithHint(errdefs.ErrInvalidArgument, "dictionary-encoded columns of flat values, such as pandas categoricals, are read",
			"file %s: column %q has dictionary-encoded nested values, which are not read", path, top)
	}
	// DictionaryEncoding: id 4, indexType 6 (an Int table), isOrdered 8,
	// dictionaryKind 10.
	id, err := enc.int64(4, 0)
	if err != nil {
		return col, wrap(err)
	}
	if _, dup := l.dictVals[id]; dup {
		return col, wrap(fmt.Errorf("dictionary id %d used twice", id))
	}
	idx, ok, err := enc.table(6)
	if err == nil && !ok {
		err = fmt.Errorf("dictionary without an index type")
	}
	if err != nil {
		return col, wrap(err)
	}
	_, bits, err := layoutOf(2, idx)
	if err != nil {
		return col, wrap(fmt.Errorf("dictionary index: %w", err))
	}
	if _, err := enc.byte(8, 0); err != nil {
		return col, wrap(err)
	}
	if _, err := enc.int16(10, 0); err != nil {
		return col, wrap(err)
	}
	l.dictVals[id] = col
	return colLayout{name: col.name, kind: layoutFixed, bits: bits}, nil
}

// childCount is how many children a field of each nested layout has.
var childCount = map[layoutKind]int{layoutNull: 0, layoutBinary: 0, layoutView: 0,
	layoutList: 1, layoutListView: 1, layoutFixedList: 1}

// decimalMaxPrecision is the largest precision of a decimal of each width.
var decimalMaxPrecision = map[int32]int32{32: 9, 64: 18, 128: 38, 256: 76}

// layoutOf checks the type table of a field of type typeType (Schema.fbs'
// Type union) and returns how a record batch lays it out.
func layoutOf(typeType byte, t fbTable) (layoutKind, int64, error) {
	var (
		unit int16
		bits int32
		err  error
	)
	switch typeType {
	case 1: // Null
		return layoutNull, 0, nil
	case 2: // Int: bitWidth 4, is_signed 6
		if bits, err = t.int32(4, 0); err == nil {
			_, err = t.byte(6, 0)
		}
		if err == nil && bits != 8 && bits != 16 && bits != 32 && bits != 64 {
			err = fmt.Errorf("integers of %d bits", bits)
		}
	case 3: // FloatingPoint: precision 4 (HALF, SINGLE, DOUBLE)
		if unit, err = t.int16(4, 0); err == nil && (unit < 0 || unit > 2) {
			err = fmt.Errorf("floating point precision %d", unit)
		}
		bits = 16 << max(unit, 0)
	case 4, 5: // Binary, Utf8
		return layoutBinary, 32, nil
	case 19, 20: // LargeBinary, LargeUtf8
		return layoutBinary, 64, nil
	case 23, 24: // BinaryView, Utf8View
		return layoutView, 0, nil
	case 6: // Bool
		bits = 1
	case 7: // Decimal: precision 4, scale 6, bitWidth 8
		var precision int32
		if precision, err = t.int32(4, 0); err == nil {
			if _, err = t.int32(6, 0); err == nil {
				bits, err = t.int32(8, 128)
			}
		}
		if max, ok := decimalMaxPrecision[bits]; err == nil && (!ok || precision < 1 || precision > max) {
			err = fmt.Errorf("decimal of precision %d in %d bits", precision, bits)
		}
	case 8: // Date: unit 4 (DAY, MILLISECOND)
		if unit, err = t.int16(4, 1); err == nil && unit != 0 && unit != 1 {
			err = fmt.Errorf("date unit %d", unit)
		}
		bits = 32 << max(unit, 0)
	case 9: // Time: unit 4 (SECOND, MILLISECOND, MICROSECOND, NANOSECOND), bitWidth 6
		if unit, err = t.int16(4, 1); err == nil {
			bits, err = t.int32(6, 32)
		}
		if err == nil && !(bits == 32 && (unit == 0 || unit == 1)) && !(bits == 64 && (unit == 2 || unit == 3)) {
			err = fmt.Errorf("time of unit %d in %d bits", unit, bits)
		}
	case 10: // Timestamp: unit 4, timezone 6
		if unit, err = t.int16(4, 0); err == nil {
			_, err = t.str(6)
		}
		if err == nil && (unit < 0 || unit > 3) {
			err = fmt.Errorf("timestamp unit %d", unit)
		}
		bits = 64
	case 11: // Interval: unit 4 (YEAR_MONTH, DAY_TIME, MONTH_DAY_NANO)
		if unit, err = t.int16(4, 0); err == nil && (unit < 0 || unit > 2) {
			err = fmt.Errorf("interval unit %d", unit)
		}
		bits = 32 << max(unit, 0)
	case 18: // Duration: unit 4
		if unit, err = t.int16(4, 1); err == nil && (unit < 0 || unit > 3) {
			err = fmt.Errorf("duration unit %d", unit)
		}
		bits = 64
	case 15: // FixedSizeBinary: byteWidth 4
		var width int32
		if width, err = t.int32(4, 0); err == nil && width < 0 {
			err = fmt.Errorf("fixed-size binary of %d bytes", width)
		}
		return layoutFixed, 8 * int64(width), err
	case 12: // List
		return layoutList, 32, nil
	case 21: // LargeList
		return layoutList, 64, nil
	case 25: // ListView
		return layoutListView, 32, nil
	case 26: // LargeListView
		return layoutListView, 64, nil
	case 13: // Struct_
		return layoutStruct, 0, nil
	case 22: // RunEndEncoded
		return layoutUnread, 0, nil
	case 14: // Union: mode 4, typeIds 6
		if _, err = t.int16(4, 0); err == nil {
			_, err = t.vector(6, 4)
		}
		return layoutUnread, 0, err
	case 16: // FixedSizeList: listSize 4
		var size int32
		if size, err = t.int32(4, 0); err == nil && size < 0 {
			err = fmt.Errorf("fixed-size list of %d values", size)
		}
		return layoutFixedList, int64(size), err
	case 17: // Map: keysSorted 4
		_, err = t.byte(4, 0)
		return layoutList, 32, err
	default:
		return 0, 0, fmt.Errorf("unknown type %d", typeType)
	}
	return layoutFixed, int64(bits), err
}

// inPlace reports whether the file's batches can be read in place, from
// the read-only mapping. Not if it has dictionaries (arrow-go v18.8.0's
// mapped reader panics on its uninitialized dictionary memo), is big-endian
// (batches are swapped in place), or has compressed batches or string
// views: decompression and the casts of views read their input on
// goroutines of their own, where a fault of a file truncated under us
// would crash the process.
func (l *fileLayout) inPlace(data []byte) bool {
	if len(l.dictVals) > 0 || l.bigEndian {
		return false
	}
	var views func(cs []colLayout) bool
	views = func(cs []colLayout) bool {
		for _, c := range cs {
			if c.kind == layoutView || views(c.children) {
				return true
			}
		}
		return false
	}
	return !views(l.cols) && !l.compressed(data)
}
