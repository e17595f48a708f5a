package scancache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

var (
	magic          = []byte("PAR1")
	magicEncrypted = []byte("PARE")
)

// minParquetSize is the smallest valid Parquet file: two magics and the
// footer length.
const minParquetSize = 12

// tailSize is how much of an object's end the first fetch reads: the footer
// of most files fits, so one request gets it.
const tailSize = 64 << 10

// footerLen parses the last 8 bytes of an object of size bytes and returns
// the span of its Thrift footer (without the 8 trailing bytes).
func footerSpan(key string, size int64, last8 []byte) (span, error) {
	if bytes.Equal(last8[4:], magicEncrypted) {
		return span{}, notParquet(key, "it has an encrypted footer, which the scan cache does not read")
	}
	if !bytes.Equal(last8[4:], magic) {
		return span{}, notParquet(key, "no PAR1 magic at its end")
	}
	n := int64(binary.LittleEndian.Uint32(last8[:4]))
	if n == 0 || n > size-minParquetSize {
		return span{}, notParquet(key, fmt.Sprintf("its footer length %d does not fit its size %d", n, size))
	}
	return span{Off: size - 8 - n, Len: n}, nil
}

func notParquet(key, why string) error {
	return errdefs.New(errdefs.ErrDataLoss, "object %s is not a readable Parquet file: %s", key, why)
}

// parseFooter decodes the Thrift file metadata.
func parseFooter(key string, b []byte) (md *metadata.FileMetaData, err error) {
	defer func() {
		if r := recover(); r != nil { // the Thrift decoder on hostile bytes
			md, err = nil, notParquet(key, fmt.Sprintf("its footer does not decode: %v", r))
		}
	}()
	md, err = metadata.NewFileMetaData(b, nil)
	if err != nil {
		return nil, notParquet(key, "its footer does not decode: "+err.Error())
	}
	return md, nil
}

// fieldNames returns the names of the top-level fields at positions, and
// "#N" for each position N the file does not have.
func fieldNames(md *metadata.FileMetaData, positions []int) (names, missing []string) {
	root := md.Schema.Root()
	names = []string{}
	for _, p := range positions {
		if p < 0 || p >= root.NumFields() {
			missing = append(missing, fmt.Sprintf("#%d", p))
			continue
		}
		names = append(names, root.Field(p).Name())
	}
	return names, missing
}

// chunkSpans returns the byte ranges a reader of the given top-level
// columns (nil: all) needs besides the footer: for every row group kept
// (keep nil: all), each
// selected leaf column's chunk from its first page (dictionary, index or
// data page) for TotalCompressedSize bytes, and its column index, offset
// index and bloom filter. The first 4 bytes (the leading magic) are
// included. Columns the file does not have are skipped (a column added to
// the table after the file was written). Names match case-insensitively,
// as in SQL.
func chunkSpans(key string, md *metadata.FileMetaData, footer span, columns []string, keep []bool) (_ []span, missing []string, _ error) {
	var leaves []int
	found := make([]bool, len(columns))
	for i, col := range md.Schema.Columns() {
		if columns == nil {
			leaves = append(leaves, i)
			continue
		}
		path, matched := col.ColumnPath(), false
		for j, c := range columns {
			if len(path) > 0 && strings.EqualFold(path[0], c) {
				found[j], matched = true, true
			}
		}
		if matched {
			leaves = append(leaves, i)
		}
	}
	for j, c := range columns {
		if !found[j] {
			missing = append(missing, c)
		}
	}
	out := []span{{Off: 0, Len: int64(len(magic))}}
	if len(leaves) == 0 {
		return out, missing, nil
	}
	// The ends of known structures bound a bloom filter written without
	// its length.
	var bounds []int64
	var blooms []int64
	bad := func(what string, off, n int64, rg, leaf int) error {
		return notParquet(key, fmt.Sprintf("row group %d column %d: %s [%d, %d) outside the data region [4, %d)",
			rg, leaf, what, off, off+n, footer.Off))
	}
	// parquet-mr up to 1.2.8 left the dictionary page header out of
	// TotalCompressedSize (PARQUET-816); readers pad such chunks by up to
	// 100 bytes, so fetch those too.
	var pad int64
	if v := md.WriterVersion(); v != nil && v.LessThan(metadata.Parquet816FixedVersion) {
		pad = 100
	}
	for rg := 0; rg < md.NumRowGroups(); rg++ {
		rgm := md.RowGroup(rg)
		// A pruned row group's structures still bound the bloom filters
		// of the kept ones; only its spans are left out.
		pruned := keep != nil && !keep[rg]
		spans := &out
		if pruned {
			spans = new([]span)
		}
		for _, leaf := range leaves {
			cc, err := rgm.ColumnChunk(leaf)
			if err != nil {
				return nil, nil, notParquet(key, err.Error())
			}
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() {
				if d := cc.DictionaryPageOffset(); d >= 4 && d < start {
					start = d
				}
			}
			if cc.HasIndexPage() {
				if d := cc.IndexPageOffset(); d >= 4 && d < start {
					start = d
				}
			}
			n := cc.TotalCompressedSize()
			if start < 4 || n < 0 || start+n > footer.Off {
				return nil, nil, bad("chunk", start, n, rg, leaf)
			}
			*spans = append(*spans, span{Off: start, Len: n + min(pad, footer.Off-start-n)})
			bounds = append(bounds, start)
			for _, loc := range []*metadata.IndexLocation{cc.GetColumnIndexLocation(), cc.GetOffsetIndexLocation()} {
				if loc == nil {
					continue
				}
				s := span{Off: loc.Offset, Len: int64(loc.Length)}
				if s.Off < 4 || s.Len < 0 || s.end() > footer.Off {
					return nil, nil, bad("page index", s.Off, s.Len, rg, leaf)
				}
				*spans = append(*spans, s)
				bounds = append(bounds, s.Off)
			}
			if off := cc.BloomFilterOffset(); off > 0 {
				if l := int64(cc.BloomFilterLength()); l > 0 {
					if off < 4 || off+l > footer.Off {
						return nil, nil, bad("bloom filter", off, l, rg, leaf)
					}
					*spans = append(*spans, span{Off: off, Len: l})
				} else if !pruned {
					blooms = append(blooms, off)
				}
			}
		}
	}
	for _, off := range blooms {
		if off < 4 || off >= footer.Off {
			return nil, nil, notParquet(key, fmt.Sprintf("bloom filter at %d outside the data region", off))
		}
		end := footer.Off
		for _, b := range bounds {
			if b > off && b < end {
				end = b
			}
		}
		out = append(out, span{Off: off, Len: end - off})
	}
	return out, missing, nil
}
