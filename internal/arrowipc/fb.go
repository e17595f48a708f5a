package arrowipc

import (
	"encoding/binary"
	"fmt"

	flatbuffers "github.com/google/flatbuffers/go"
)

// A bounded reader of the flatbuffers in an Arrow IPC file's footer and
// message headers. flatbuffers' generated accessors (and so arrow-go's IPC
// reader) follow every offset and trust every vector length they find: a
// corrupt offset reads outside the buffer, one that wraps around makes a
// cycle, and a corrupt length becomes a slice of billions of elements,
// which the Go runtime cannot recover from. fbTable checks each offset
// against the buffer, in 64-bit arithmetic, before it follows it. Once a
// table and the fields of it that arrow-go reads have been checked this
// way, arrow-go's 32-bit arithmetic lands on exactly the bytes checked
// (every position checked is below 1<<31).

// fbMaxLen is the largest flatbuffer read: positions are uint32 and
// flatbuffers.Table keeps them below 1<<31.
const fbMaxLen = 1<<31 - 1

// fbTable is a table whose vtable and inline part lie within the buffer.
type fbTable struct {
	flatbuffers.Table
	vt    uint32 // position of the vtable
	vtLen uint32 // size of the vtable in bytes
	size  uint32 // size of the table's inline part in bytes
}

// fbRoot returns the root table of a flatbuffer.
func fbRoot(b []byte) (fbTable, error) {
	if len(b) < 4 || len(b) > fbMaxLen {
		return fbTable{}, fmt.Errorf("flatbuffer of %d bytes", len(b))
	}
	return fbTableAt(b, uint64(binary.LittleEndian.Uint32(b)))
}

// fbTableAt returns the table at pos.
func fbTableAt(b []byte, pos uint64) (fbTable, error) {
	n := uint64(len(b))
	if pos+4 > n {
		return fbTable{}, fmt.Errorf("table at %d lies outside the %d-byte flatbuffer", pos, n)
	}
	vt := int64(pos) - int64(int32(binary.LittleEndian.Uint32(b[pos:])))
	if vt < 0 || uint64(vt)+4 > n {
		return fbTable{}, fmt.Errorf("vtable of the table at %d lies outside the flatbuffer", pos)
	}
	vtLen := uint64(binary.LittleEndian.Uint16(b[vt:]))
	size := uint64(binary.LittleEndian.Uint16(b[vt+2:]))
	if vtLen < 4 || vtLen%2 != 0 || uint64(vt)+vtLen > n {
		return fbTable{}, fmt.Errorf("vtable of %d bytes of the table at %d", vtLen, pos)
	}
	if size < 4 || pos+size > n {
		return fbTable{}, fmt.Errorf("table of %d bytes at %d lies outside the flatbuffer", size, pos)
	}
	return fbTable{Table: flatbuffers.Table{Bytes: b, Pos: flatbuffers.UOffsetT(pos)}, vt: uint32(vt), vtLen: uint32(vtLen), size: uint32(size)}, nil
}

// field returns the position of the n-byte field in slot (the vtable
// offset: 4, 6, 8, ...), or 0 if the table does not have it.
func (t fbTable) field(slot, n uint32) (uint32, error) {
	if slot >= t.vtLen {
		return 0, nil
	}
	off := uint32(t.GetVOffsetT(flatbuffers.UOffsetT(t.vt + slot)))
	if off == 0 {
		return 0, nil
	}
	if off < 4 || off+n > t.size {
		return 0, fmt.Errorf("field %d of the table at %d lies outside it", slot, t.Pos)
	}
	return uint32(t.Pos) + off, nil
}

// int64 returns the int64 in slot, or def.
func (t fbTable) int64(slot uint32, def int64) (int64, error) {
	p, err := t.field(slot, 8)
	if err != nil || p == 0 {
		return def, err
	}
	return t.GetInt64(flatbuffers.UOffsetT(p)), nil
}

// int32 returns the int32 in slot, or def.
func (t fbTable) int32(slot uint32, def int32) (int32, error) {
	p, err := t.field(slot, 4)
	if err != nil || p == 0 {
		return def, err
	}
	return t.GetInt32(flatbuffers.UOffsetT(p)), nil
}

// int16 returns the int16 in slot, or def.
func (t fbTable) int16(slot uint32, def int16) (int16, error) {
	p, err := t.field(slot, 2)
	if err != nil || p == 0 {
		return def, err
	}
	return t.GetInt16(flatbuffers.UOffsetT(p)), nil
}

// byte returns the byte (a bool, an int8 or a union's type) in slot, or def.
func (t fbTable) byte(slot uint32, def byte) (byte, error) {
	p, err := t.field(slot, 1)
	if err != nil || p == 0 {
		return def, err
	}
	return t.GetByte(flatbuffers.UOffsetT(p)), nil
}

// ref returns the position an offset in slot points to; ok is false if
// the table does not have the field.
func (t fbTable) ref(slot uint32) (pos uint64, ok bool, err error) {
	p, err := t.field(slot, 4)
	if err != nil || p == 0 {
		return 0, false, err
	}
	return t.follow(uint64(p))
}

// follow returns the position the offset at p points to.
func (t fbTable) follow(p uint64) (uint64, bool, error) {
	if p+4 > uint64(len(t.Bytes)) {
		return 0, false, fmt.Errorf("offset at %d lies outside the flatbuffer", p)
	}
	to := p + uint64(binary.LittleEndian.Uint32(t.Bytes[p:]))
	if to >= uint64(len(t.Bytes)) {
		return 0, false, fmt.Errorf("offset at %d points outside the flatbuffer", p)
	}
	return to, true, nil
}

// table returns the table in slot; ok is false if there is none.
func (t fbTable) table(slot uint32) (fbTable, bool, error) {
	pos, ok, err := t.ref(slot)
	if err != nil || !ok {
		return fbTable{}, false, err
	}
	c, err := fbTableAt(t.Bytes, pos)
	return c, err == nil, err
}

// fbVector is a vector whose elements lie within the buffer.
type fbVector struct {
	b     []byte
	start uint64 // position of the first element
	n     int
	elem  uint64 // size of an element in bytes
}

// vector returns the vector of elem-byte elements (structs, scalars or
// offsets) in slot; an absent vector is empty.
func (t fbTable) vector(slot uint32, elem uint64) (fbVector, error) {
	pos, ok, err := t.ref(slot)
	if err != nil || !ok {
		return fbVector{b: t.Bytes, elem: elem}, err
	}
	lim := uint64(len(t.Bytes))
	if pos+4 > lim {
		return fbVector{}, fmt.Errorf("vector at %d lies outside the flatbuffer", pos)
	}
	n := uint64(binary.LittleEndian.Uint32(t.Bytes[pos:]))
	if n*elem > lim-pos-4 {
		return fbVector{}, fmt.Errorf("vector of %d elements at %d does not fit in the %d-byte flatbuffer", n, pos, lim)
	}
	return fbVector{b: t.Bytes, start: pos + 4, n: int(n), elem: elem}, nil
}

// at returns the position of element i.
func (v fbVector) at(i int) uint64 { return v.start + uint64(i)*v.elem }

// int64 returns the k-th int64 of element i (of a vector of int64s, or of
// structs of them).
func (v fbVector) int64(i, k int) int64 {
	return int64(binary.LittleEndian.Uint64(v.b[v.at(i)+8*uint64(k):]))
}

// table returns element i of a vector of tables.
func (v fbVector) table(i int) (fbTable, error) {
	to, _, err := fbTable{Table: flatbuffers.Table{Bytes: v.b}}.follow(v.at(i))
	if err != nil {
		return fbTable{}, err
	}
	return fbTableAt(v.b, to)
}

// str returns the string in slot (nil if absent).
func (t fbTable) str(slot uint32) ([]byte, error) {
	v, err := t.vector(slot, 1)
	if err != nil || v.n == 0 {
		return nil, err
	}
	return v.b[v.start : v.start+uint64(v.n)], nil
}

// checkKeyValues checks a vector of KeyValue tables (custom metadata) in
// slot: each key (slot 4) and value (slot 6) is a string within the buffer.
func (t fbTable) checkKeyValues(slot uint32) error {
	kvs, err := t.vector(slot, 4)
	if err != nil {
		return fmt.Errorf("custom metadata: %w", err)
	}
	for i := range kvs.n {
		kv, err := kvs.table(i)
		if err != nil {
			return fmt.Errorf("custom metadata %d: %w", i, err)
		}
		for _, s := range []uint32{4, 6} {
			if _, err := kv.str(s); err != nil {
				return fmt.Errorf("custom metadata %d: %w", i, err)
			}
		}
	}
	return nil
}
