package arrowipc

import (
	"encoding/binary"
	"fmt"
)

// A compressed buffer of an Arrow IPC file starts with its length
// uncompressed, which arrow-go allocates before it decompresses the rest,
// and its zstd frames tell klauspost's decoder how large a window to
// allocate (up to twice 64 GiB for a frame that claims its content is that
// large). checkCompressed bounds both by what the compressed bytes can
// decompress to, so that a corrupt length costs an error, not the memory.

// Codecs of Message.fbs' CompressionType.
const (
	codecLZ4  = 0
	codecZstd = 1
)

const (
	// lz4Ratio bounds what an LZ4 frame decompresses to: a sequence's
	// match length grows by at most 255 per byte.
	lz4Ratio = 256
	// zstdMaxBlock is the most a zstd block decompresses to.
	zstdMaxBlock = 128 << 10
	// zstdMaxWindow is the largest window a zstd frame may ask for beyond
	// its content (writers use at most 8 MiB; long-distance mode 128 MiB).
	zstdMaxWindow = 128 << 20
)

// checkCompressed checks that the compressed bytes b (after the length
// prefix) can decompress to the n bytes the prefix gives.
func checkCompressed(codec byte, b []byte, n int64) error {
	if codec == codecLZ4 {
		if most := lz4Ratio*int64(len(b)) + 1024; n > most {
			return fmt.Errorf("%d bytes of LZ4 frames cannot decompress to %d", len(b), n)
		}
		return nil
	}
	var most int64
	for len(b) > 0 {
		m, rest, err := zstdFrame(b, n)
		if err != nil {
			return err
		}
		most += m
		b = rest
	}
	if n > most {
		return fmt.Errorf("zstd frames of %d bytes at most cannot decompress to %d", most, n)
	}
	return nil
}

// zstdFrame checks the zstd (or skippable) frame at the start of b, of a
// buffer that decompresses to n bytes, and returns the most it decompresses
// to and the bytes after it. See RFC 8878, section 3.1.
func zstdFrame(b []byte, n int64) (int64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("zstd frame of %d bytes", len(b))
	}
	magic := binary.LittleEndian.Uint32(b)
	if magic&^0xf == 0x184d2a50 { // skippable frame
		size := uint64(binary.LittleEndian.Uint32(b[4:]))
		if size > uint64(len(b)-8) {
			return 0, nil, fmt.Errorf("skippable zstd frame of %d bytes in %d", size, len(b))
		}
		return 0, b[8+size:], nil
	}
	if magic != 0xfd2fb528 {
		return 0, nil, fmt.Errorf("not a zstd frame (magic %#x)", magic)
	}
	fhd := b[4]
	single := fhd&0x20 != 0
	if fhd&0x08 != 0 {
		return 0, nil, fmt.Errorf("zstd frame header with the reserved bit set")
	}
	pos := 5
	var window uint64
	if !single {
		wd := b[pos]
		pos++
		base := uint64(1) << (10 + wd>>3)
		window = base + base/8*uint64(wd&7)
	}
	pos += []int{0, 1, 2, 4}[fhd&3] // dictionary id
	fcsSize := []int{0, 2, 4, 8}[fhd>>6]
	if fcsSize == 0 && single {
		fcsSize = 1
	}
	if pos+fcsSize > len(b) {
		return 0, nil, fmt.Errorf("zstd frame header of %d bytes in %d", pos+fcsSize, len(b))
	}
	var content uint64
	hasContent := fcsSize > 0
	switch fcsSize {
	case 1:
		content = uint64(b[pos])
	case 2:
		content = uint64(binary.LittleEndian.Uint16(b[pos:])) + 256
	case 4:
		content = uint64(binary.LittleEndian.Uint32(b[pos:]))
	case 8:
		content = binary.LittleEndian.Uint64(b[pos:])
	}
	pos += fcsSize
	if single {
		window = content
	}
	if hasContent && content > uint64(n) {
		return 0, nil, fmt.Errorf("zstd frame of %d bytes in a buffer of %d", content, n)
	}
	if window > max(uint64(n), zstdMaxWindow) {
		return 0, nil, fmt.Errorf("zstd frame with a window of %d bytes for a buffer of %d", window, n)
	}
	var most int64
	for last := false; !last; {
		if pos+3 > len(b) {
			return 0, nil, fmt.Errorf("zstd frame cut short")
		}
		h := uint32(b[pos]) | uint32(b[pos+1])<<8 | uint32(b[pos+2])<<16
		pos += 3
		last = h&1 != 0
		size := int(h >> 3)
		switch h >> 1 & 3 {
		case 0: // raw
			most += int64(size)
		case 1: // RLE: one byte, repeated size times
			most += int64(size)
			size = 1
		case 2: // compressed
			most += zstdMaxBlock
		default:
			return 0, nil, fmt.Errorf("zstd block of a reserved type")
		}
		if size > len(b)-pos {
			return 0, nil, fmt.Errorf("zstd block of %d bytes in %d", size, len(b)-pos)
		}
		pos += size
	}
	if fhd&0x04 != 0 { // content checksum
		pos += 4
	}
	if pos > len(b) {
		return 0, nil, fmt.Errorf("zstd frame cut short")
	}
	if hasContent {
		most = min(most, int64(content))
	}
	return most, b[pos:], nil
}
