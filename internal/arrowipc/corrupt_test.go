package arrowipc

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

var (
	ipcMutations = flag.Int("ipc.mutations", 0, "corrupt files TestIPCCorruptFilesRefused reads (0: a few seconds' worth)")
	ipcSeedFlag  = flag.Int64("ipc.seed", 1, "seed of TestIPCCorruptFilesRefused's mutations")
	ipcLast      = flag.String("ipc.last", "", "file TestIPCCorruptFilesRefused writes each corrupt file to before it reads it, to keep one that crashes the process")
)

// ipcInteresting are values a corrupt length or offset likes to take.
var ipcInteresting = []uint64{0, 1, 7, 8, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
	1 << 32, 1 << 40, 1<<62 + 1, 1<<63 - 1, 1 << 63, 1<<64 - 1, 1<<64 - 8}

// mutateIPC returns a corrupt copy of data: bytes overwritten, a word set
// to an interesting value or nudged, a span cut out, bytes inserted, or a
// span copied over another.
func mutateIPC(rng *rand.Rand, data []byte) []byte {
	b := append([]byte(nil), data...)
	switch rng.Intn(6) {
	case 0:
		for range 1 + rng.Intn(4) {
			b[rng.Intn(len(b))] = byte(rng.Intn(256))
		}
	case 1, 2:
		size := []int{2, 4, 8}[rng.Intn(3)]
		pos := rng.Intn(len(b)-size+1) &^ (size - 1)
		v := ipcInteresting[rng.Intn(len(ipcInteresting))]
		if rng.Intn(3) == 0 { // nudge what is there
			v = binary.LittleEndian.Uint64(append(b[pos:pos+size:pos+size], make([]byte, 8-size)...)) + uint64(rng.Intn(17)) - 8
		}
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], v)
		copy(b[pos:pos+size], w[:])
	case 3:
		from := rng.Intn(len(b))
		to := min(len(b), from+1+rng.Intn(64))
		b = append(b[:from], b[to:]...)
	case 4:
		pos := rng.Intn(len(b) + 1)
		ins := make([]byte, 1+rng.Intn(16))
		rng.Read(ins)
		b = append(b[:pos], append(ins, b[pos:]...)...)
	case 5:
		n := 1 + rng.Intn(64)
		if n < len(b) {
			copy(b[rng.Intn(len(b)-n):], b[rng.Intn(len(b)-n):][:n])
		}
	}
	return b
}

// readAll reads the file at path as its readers do: its rows, every batch
// (validated), their decoded sizes, its fingerprint.
func readAll(path string, mem memory.Allocator) error {
	ctx := context.Background()
	f, err := Open(path, Options{Allocator: mem})
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Rows(ctx); err != nil {
		return err
	}
	for i := range f.NumBatches() {
		rec, err := f.Batch(i)
		if err != nil {
			return err
		}
		err = f.CheckDecodedSize(rec, 1000)
		rec.Release()
		if err != nil {
			return err
		}
	}
	_, _, err = f.Fingerprint(ctx)
	return err
}

// checkRead writes data as a file under dir and reads it: the read must
// succeed, releasing all it allocated, or fail with a classified error.
func checkRead(dir string, data []byte) error {
	src := filepath.Join(dir, "in.arrow")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return err
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	if err := readAll(src, mem); err != nil {
		// arrow-go's reader leaks (to the garbage collector) what it
		// allocated before it panicked on a corrupt buffer, so only a
		// read that succeeds must have released everything.
		if errdefs.Class(err) == errdefs.ErrInternal {
			return fmt.Errorf("unclassed error for %q: %w", data, err)
		}
		return nil
	}
	if n := mem.CurrentAlloc(); n != 0 {
		return fmt.Errorf("%d bytes still allocated after reading %q", n, data)
	}
	return nil
}

// Corrupt Arrow IPC files, made by mutating valid ones of every type,
// plain and compressed: each reads or fails with a classified error; none
// panics or crashes the process (a fatal error, such as an allocation of
// terabytes, would end the test binary). Run longer with
// -ipc.mutations=20000 and other -ipc.seed values.
func TestIPCCorruptFilesRefused(t *testing.T) {
	n := *ipcMutations
	if n == 0 {
		n = 2500
		if raceEnabled {
			n = 300
		}
	}
	seeds := ipctest.Seeds(t)
	names := make([]string, 0, len(seeds))
	for name := range seeds {
		names = append(names, name)
	}
	sort.Strings(names)
	rng := rand.New(rand.NewSource(*ipcSeedFlag))
	dir := t.TempDir()
	for i := range n {
		name := names[i%len(names)]
		data := seeds[name]
		for range 1 + rng.Intn(2) {
			data = mutateIPC(rng, data)
		}
		if *ipcLast != "" {
			if err := os.WriteFile(*ipcLast, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sub := filepath.Join(dir, "m")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("mutation %d of %s (seed %d) panics: %v\n%q", i, name, *ipcSeedFlag, r, data)
				}
			}()
			if err := checkRead(sub, data); err != nil {
				t.Fatal(err)
			}
		}()
		if err := os.RemoveAll(sub); err != nil {
			t.Fatal(err)
		}
	}
}

// ipcFooterOf returns the root table of data's footer; writes through it
// change data.
func ipcFooterOf(t *testing.T, data []byte) fbTable {
	t.Helper()
	end := len(data) - len(magic) - 4
	footer, err := fbRoot(data[end-int(binary.LittleEndian.Uint32(data[end:])) : end])
	if err != nil {
		t.Fatal(err)
	}
	return footer
}

// ipcFieldOf returns the Field table of the column named name.
func ipcFieldOf(t *testing.T, data []byte, name string) fbTable {
	t.Helper()
	schema, _, err := ipcFooterOf(t, data).table(6)
	if err != nil {
		t.Fatal(err)
	}
	fields, err := schema.vector(6, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i := range fields.n {
		f, err := fields.table(i)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := f.str(4); string(s) == name {
			return f
		}
	}
	t.Fatalf("no column %q", name)
	return fbTable{}
}

// ipcBatchOf returns the RecordBatch table of data's first record batch
// (or, if dict, of its first dictionary batch) and its body; writes
// through either change data.
func ipcBatchOf(t *testing.T, data []byte, dict bool) (fbTable, []byte) {
	t.Helper()
	l, err := readLayout("test", data)
	if err != nil {
		t.Fatal(err)
	}
	blk, kind := l.batches[0], byte(ipcRecordBatch)
	if dict {
		blk, kind = l.dicts[0], ipcDictionaryBatch
	}
	rb, err := messageHeader(data, blk, kind)
	if err == nil && dict {
		rb, _, err = rb.table(6)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rb, data[blk.offset+blk.meta : blk.offset+blk.meta+blk.body]
}

// ipcVector returns the vector in slot of tab.
func ipcVector(t *testing.T, tab fbTable, slot uint32, elem uint64) fbVector {
	t.Helper()
	v, err := tab.vector(slot, elem)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ipcScalar returns the position of the n-byte scalar in slot of tab.
func ipcScalar(t *testing.T, tab fbTable, slot, n uint32) []byte {
	t.Helper()
	p, err := tab.field(slot, n)
	if err != nil || p == 0 {
		t.Fatalf("no field %d: %v", slot, err)
	}
	return tab.Bytes[p:]
}

// The corruptions that crashed the process, or would have, before files
// were checked before arrow-go reads them: each is refused as an invalid
// file.
func TestIPCCorruptLengthsRefused(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	tests := []struct {
		name    string
		seed    string // of ipctest.Seeds, or "dict": a dictionary column alone
		corrupt func(t *testing.T, data []byte)
		wantErr string
	}{
		{
			name: "schema claims 2147483647 fields", seed: "narrow",
			corrupt: func(t *testing.T, data []byte) {
				schema, _, _ := ipcFooterOf(t, data).table(6)
				v := ipcVector(t, schema, 6, 4)
				le.PutUint32(v.b[v.start-4:], 1<<31-1)
			},
			wantErr: "schema: fields: vector of 2147483647 elements",
		},
		{
			name: "field claims 2147483647 children", seed: "narrow",
			corrupt: func(t *testing.T, data []byte) {
				v := ipcVector(t, ipcFieldOf(t, data, "usd"), 14, 4)
				le.PutUint32(v.b[v.start-4:], 1<<31-1)
			},
			wantErr: `schema: field "usd" of column "usd": children: vector of 2147483647 elements`,
		},
		{
			name: "offset wraps around to point backwards", seed: "narrow",
			corrupt: func(t *testing.T, data []byte) {
				schema, _, _ := ipcFooterOf(t, data).table(6)
				v := ipcVector(t, schema, 6, 4)
				le.PutUint32(v.b[v.at(1):], 1<<32-8)
			},
			wantErr: "schema: field 1: offset at",
		},
		{
			name: "decimal32 of precision 38", seed: "wide",
			corrupt: func(t *testing.T, data []byte) {
				typ, _, _ := ipcFieldOf(t, data, "d32").table(10)
				le.PutUint32(ipcScalar(t, typ, 4, 4), 38)
			},
			wantErr: `schema: field "d32" of column "d32": decimal of precision 38 in 32 bits`,
		},
		{
			name: "record batch of more rows than its buffers hold", seed: "narrow",
			corrupt: func(t *testing.T, data []byte) {
				rb, _ := ipcBatchOf(t, data, false)
				le.PutUint64(ipcScalar(t, rb, 4, 8), 1000)
				nodes := ipcVector(t, rb, 6, 16)
				for i := range nodes.n {
					le.PutUint64(nodes.b[nodes.at(i):], 1000)
				}
			},
			wantErr: `record batch 0: column "id": validity buffer of 4 bytes where 125 are needed`,
		},
		{
			name: "nulls without a validity bitmap", seed: "narrow",
			corrupt: func(t *testing.T, data []byte) {
				rb, _ := ipcBatchOf(t, data, false)
				nodes, bufs := ipcVector(t, rb, 6, 16), ipcVector(t, rb, 8, 16)
				le.PutUint64(nodes.b[nodes.at(0)+8:], 1) // id: one null
				le.PutUint64(bufs.b[bufs.at(0)+8:], 0)   // id: no bitmap
			},
			wantErr: `record batch 0: column "id": validity buffer of 0 bytes where 1 are needed`,
		},
		{
			name: "buffer beyond the body", seed: "narrow",
			corrupt: func(t *testing.T, data []byte) {
				rb, _ := ipcBatchOf(t, data, false)
				bufs := ipcVector(t, rb, 8, 16)
				le.PutUint64(bufs.b[bufs.at(1):], 1<<40)
			},
			wantErr: "record batch 0: buffer 1 (offset 1099511627776, 16 bytes) lies outside",
		},
		{
			name: "compressed buffer claims 1 TiB", seed: "zstd",
			corrupt: func(t *testing.T, data []byte) {
				rb, body := ipcBatchOf(t, data, false)
				bufs := ipcVector(t, rb, 8, 16)
				le.PutUint64(body[le.Uint64(bufs.b[bufs.at(1):]):], 1<<40)
			},
			wantErr: `record batch 0: column "id": values buffer of 1099511627776 bytes uncompressed, beyond the`,
		},
		{
			name: "LZ4 buffer claims more than LZ4 can inflate to", seed: "lz4",
			corrupt: func(t *testing.T, data []byte) {
				rb, body := ipcBatchOf(t, data, false)
				bufs := ipcVector(t, rb, 8, 16)
				le.PutUint64(body[le.Uint64(bufs.b[bufs.at(1):]):], 100<<20)
			},
			wantErr: `record batch 0: column "id": values buffer: `,
		},
		{
			name: "zstd frame claims 60 GiB", seed: "zstd",
			corrupt: func(t *testing.T, data []byte) {
				rb, body := ipcBatchOf(t, data, false)
				bufs := ipcVector(t, rb, 8, 16)
				off := le.Uint64(bufs.b[bufs.at(1):]) + 8
				// Magic, a single-segment header with an 8-byte content
				// size, the size, and a last raw block of no bytes.
				copy(body[off:], []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0xf, 0, 0, 0, 1, 0, 0})
			},
			wantErr: `record batch 0: column "id": values buffer: zstd frame of 64424509440 bytes in a buffer of 16`,
		},
		{
			name: "zstd frame asks for a window of 512 MiB", seed: "zstd",
			corrupt: func(t *testing.T, data []byte) {
				rb, body := ipcBatchOf(t, data, false)
				bufs := ipcVector(t, rb, 8, 16)
				off := le.Uint64(bufs.b[bufs.at(1):]) + 8
				// Magic, a header with a window descriptor of 2^29 bytes
				// and no content size, and a last raw block of no bytes.
				copy(body[off:], []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0x98, 1, 0, 0})
			},
			wantErr: `record batch 0: column "id": values buffer: zstd frame with a window of 536870912 bytes for a buffer of 16`,
		},
		{
			name: "large string offsets beyond the data", seed: "wide",
			corrupt: func(t *testing.T, data []byte) {
				// big is the 18th column; id..fixed all have nulls in
				// batch 0 (so a bitmap each), and nothing is a view or
				// null type before it: 17 columns of two buffers, one of
				// three (country).
				rb, body := ipcBatchOf(t, data, false)
				bufs := ipcVector(t, rb, 8, 16)
				offsets := le.Uint64(bufs.b[bufs.at(17*2+1+1):])
				le.PutUint64(body[offsets+8:], 1<<40)
			},
			wantErr: `runtime error: slice bounds out of range [:1099511627776]`,
		},
		{
			name: "dictionary offsets beyond the data", seed: "dict",
			corrupt: func(t *testing.T, data []byte) {
				rb, body := ipcBatchOf(t, data, true)
				bufs := ipcVector(t, rb, 8, 16)
				le.PutUint32(body[le.Uint64(bufs.b[bufs.at(1):])+4:], 1000)
			},
			wantErr: `runtime error: slice bounds out of range [:1000]`,
		},
		{
			name: "dictionary index out of range", seed: "dict",
			corrupt: func(t *testing.T, data []byte) {
				rb, body := ipcBatchOf(t, data, false)
				bufs := ipcVector(t, rb, 8, 16)
				body[le.Uint64(bufs.b[bufs.at(1):])] = 100
			},
			wantErr: `record batch 0: column "cat": dictionary index 100 out of range (2 values)`,
		},
	}
	seeds := ipctest.Seeds(t)
	seeds["dict"] = dictFile(t, []string{"p", "q", "p"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := append([]byte(nil), seeds[tc.seed]...)
			tc.corrupt(t, data)
			// arrow-go leaks (to the garbage collector) what it allocated
			// before it panicked on a corrupt buffer: no checked allocator.
			src := filepath.Join(t.TempDir(), "a.arrow")
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			err := readAll(src, memory.NewGoAllocator())
			want := "file " + src + " is not a valid Arrow IPC file: "
			if err == nil || !strings.Contains(err.Error(), want+tc.wantErr) ||
				!errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error = %v\nwant %s%s (invalid argument)", err, want, tc.wantErr)
			}
		})
	}
}
