//go:build unix

package flight

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"golang.org/x/sys/unix"
)

// newTestSpares keeps spares in a folder of dir, up to max bytes.
func newTestSpares(t *testing.T, dir string, max int64) *Spares {
	t.Helper()
	sp, err := NewSpares(filepath.Join(dir, "spares"), max, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

// spareFile writes size bytes of b at a new path of dir and returns it.
func spareFile(t *testing.T, dir, name string, b byte, size int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, bytes.Repeat([]byte{b}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestFetchWritesOverSpare: a fetch given a spare writes the intermediate
// over it, and the file it leaves is the one a fetch without spares
// leaves, byte for byte, whether the spare was longer or shorter: nothing
// of what the spare held stays.
func TestFetchWritesOverSpare(t *testing.T) {
	for _, tr := range transports {
		t.Run(strings.TrimSuffix(tr, "://"), func(t *testing.T) { testFetchWritesOverSpare(t, tr) })
	}
}

func testFetchWritesOverSpare(t *testing.T, transport string) {
	key := []byte("fleet key")
	a := serveHandoffWorker(t, &joinedWorker{name: "a", lease: "la", key: key})
	src, _, tkt := holdParent(t, a, key, handoffSchema, handoffBatches)
	dir := filepath.Dir(src)
	plain := filepath.Join(dir, "plain.arrow")
	if err := FetchIntermediate(context.Background(), transport+a.addr, tkt, plain, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	sp := newTestSpares(t, dir, 1<<30)
	for i, size := range []int{len(want) * 3, len(want) / 2, 1} {
		old := spareFile(t, dir, "old.arrow", 0xAB, size)
		sp.Put(old)
		if _, err := os.Stat(old); !os.IsNotExist(err) {
			t.Fatalf("a put spare is still at its path: %v", err)
		}
		if got := sp.Bytes(); got != int64(size) {
			t.Fatalf("spares hold %d bytes, want %d", got, size)
		}
		dst := filepath.Join(dir, "in"+string(rune('0'+i))+".arrow")
		if err := FetchIntermediate(context.Background(), transport+a.addr, tkt, dst, FetchOptions{Spares: sp}); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("over a spare of %d bytes: %d bytes, not the %d of a fetch without spares", size, len(got), len(want))
		}
		if sp.Bytes() != 0 {
			t.Fatalf("the spare was not taken: %d bytes held", sp.Bytes())
		}
		// It is the spare: put back, it is taken again.
		ino := inode(t, dst)
		sp.Put(dst)
		dst2 := dst + ".again.arrow"
		if err := FetchIntermediate(context.Background(), transport+a.addr, tkt, dst2, FetchOptions{Spares: sp}); err != nil {
			t.Fatal(err)
		}
		if inode(t, dst2) != ino {
			t.Fatal("the fetch did not write over the spare")
		}
		os.Remove(dst2)
	}

	// The size is known first (over HTTP the answer's length, over DoGet
	// the holder's header): of several spares, the fetch takes the
	// smallest that holds it, and leaves the others.
	{
		var fit uint64
		for _, size := range []int{len(want) * 3, len(want) * 2, len(want) / 2} {
			old := spareFile(t, dir, "old.arrow", 0xAB, size)
			if size == len(want)*2 {
				fit = inode(t, old)
			}
			sp.Put(old)
		}
		dst := filepath.Join(dir, "fit.arrow")
		if err := FetchIntermediate(context.Background(), transport+a.addr, tkt, dst, FetchOptions{Spares: sp}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) || inode(t, dst) != fit {
			t.Fatalf("over the spare that fits: %d bytes, inode %d (want %d)", len(got), inode(t, dst), fit)
		}
		if got := sp.Bytes(); got != int64(len(want)*3+len(want)/2) {
			t.Fatalf("%d bytes of spares left, want the other two", got)
		}
		os.Remove(dst)
		sp.Relieve(1<<40, 0) // all of them
	}

	// Over HTTP, a fetch that fails once it took a spare (what came is
	// not an Arrow IPC file) removes it, and leaves no file; over DoGet
	// the holder refuses such a file before answering, and the spare
	// stays.
	{
		sp.Put(spareFile(t, dir, "old.arrow", 0xAB, len(want)*2))
		junk := spareFile(t, dir, "junk.arrow", 0x5A, len(want))
		a.held.Register("r1", "junk", junk)
		tkt, err := SignIntermediate(key, IntermediateTicket{Run: "r1", Model: "junk", Worker: "a", Lease: "la", Expires: time.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "junk-fetched.arrow")
		err = FetchIntermediate(context.Background(), transport+a.addr, tkt, dst, FetchOptions{Spares: sp})
		wantErr, left := errdefs.ErrInvalidArgument, 0
		if transport != "http://" {
			wantErr, left = errdefs.ErrInternal, 1
		}
		if !errdefs.Is(err, wantErr) {
			t.Fatalf("a fetch of a file that is not Arrow: %v, want %v", err, wantErr)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Fatalf("a failed fetch left %s: %v", dst, err)
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, "spares")); len(ents) != left {
			t.Fatalf("a failed fetch left %d spares, want %d", len(ents), left)
		}
		sp.Relieve(1<<40, 0) // none for what follows
	}

	// A refusal comes before a spare is taken (by the size the answer
	// gives): the spare stays, and no file is left.
	sp.Put(spareFile(t, dir, "old.arrow", 0xAB, 4096))
	bad, err := SignIntermediate(key, IntermediateTicket{Run: "r1", Model: "missing", Worker: "a", Lease: "la", Expires: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "failed.arrow")
	if err := FetchIntermediate(context.Background(), transport+a.addr, bad, dst, FetchOptions{Spares: sp}); err == nil {
		t.Fatal("a fetch of an output the worker does not hold passed")
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("a failed fetch left %s: %v", dst, err)
	}
	left := 1
	if ents, _ := os.ReadDir(filepath.Join(dir, "spares")); len(ents) != left || sp.Bytes() != int64(left*4096) {
		t.Fatalf("a failed fetch left %d spares (%d bytes), want %d", len(ents), sp.Bytes(), left)
	}
	if ents, _ := os.ReadDir(dir); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return strings.HasSuffix(e.Name(), ".fetch") }) {
		t.Fatal("a failed fetch left its .fetch file")
	}
}

// TestSpares: what becomes a spare, the limit, the time to live, Close,
// and a leftover folder.
func TestSpares(t *testing.T) {
	dir := shmDir(t)
	sp := newTestSpares(t, dir, 10_000)
	now := time.Now()
	sp.now = func() time.Time { return now }

	// A file with another name (a task still links it) is removed, not kept.
	linked := spareFile(t, dir, "linked.arrow", 1, 100)
	if err := os.Link(linked, filepath.Join(dir, "link.arrow")); err != nil {
		t.Fatal(err)
	}
	sp.Put(linked)
	if _, err := os.Stat(linked); !os.IsNotExist(err) || sp.Bytes() != 0 {
		t.Fatalf("a linked file: %v, %d bytes kept", err, sp.Bytes())
	}
	os.Remove(filepath.Join(dir, "link.arrow"))
	// A file some process holds open or mapped (one a function left
	// behind could keep), one whose mode or extended attributes a function
	// changed: removed, not kept.
	open := spareFile(t, dir, "open.arrow", 1, 100)
	f, err := os.Open(open)
	if err != nil {
		t.Fatal(err)
	}
	sp.Put(open)
	f.Close()
	mapped := spareFile(t, dir, "mapped.arrow", 1, 4096)
	mf, err := os.Open(mapped)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(mf.Fd()), 0, 4096, syscall.PROT_READ, syscall.MAP_SHARED)
	mf.Close() // the mapping alone holds it
	if err != nil {
		t.Fatal(err)
	}
	sp.Put(mapped)
	syscall.Munmap(mem)
	private := spareFile(t, dir, "private.arrow", 1, 100)
	if err := os.Chmod(private, 0o600); err != nil {
		t.Fatal(err)
	}
	sp.Put(private)
	for _, p := range []string{open, mapped, private} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "spares")); len(ents) != 0 || sp.Bytes() != 0 {
		t.Fatalf("%d files kept that were shared or changed (%d bytes)", len(ents), sp.Bytes())
	}
	tagged := spareFile(t, dir, "tagged.arrow", 1, 100)
	if err := unix.Setxattr(tagged, "user.lakehouse-test", []byte("x"), 0); err != nil {
		t.Logf("no extended attribute on %s (%v): that check is left out", dir, err)
	} else {
		sp.Put(tagged)
		if sp.Bytes() != 0 {
			t.Fatal("a file with an extended attribute was kept")
		}
	}
	os.Remove(tagged)
	// Larger than the limit, a folder, a missing file: removed or ignored.
	sp.Put(spareFile(t, dir, "big.arrow", 1, 10_001))
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	sp.Put(filepath.Join(dir, "d"))
	sp.Put(filepath.Join(dir, "missing.arrow"))
	if sp.Bytes() != 0 {
		t.Fatalf("%d bytes kept", sp.Bytes())
	}

	// The limit: older spares make room.
	sp.Put(spareFile(t, dir, "a.arrow", 1, 6000))
	now = now.Add(time.Second)
	sp.Put(spareFile(t, dir, "b.arrow", 2, 3000))
	sp.Put(spareFile(t, dir, "c.arrow", 3, 3000))
	if got := sp.Bytes(); got != 6000 {
		t.Fatalf("%d bytes kept, want 6000 (the two newest)", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "spares")); len(ents) != 2 {
		t.Fatalf("%d spares on disk, want 2", len(ents))
	}
	// Of unknown size, the largest is taken first, the newest of equals.
	p, ok := sp.take(filepath.Join(dir, "x.arrow"), 0)
	if b, _ := os.ReadFile(p); !ok || len(b) != 3000 || b[0] != 3 {
		t.Fatalf("took %s (%v): %d bytes of %v", p, ok, len(b), b[:min(len(b), 1)])
	}
	os.Remove(p)
	// Not for a destination on another file system.
	if other := t.TempDir(); !sameDevice(dir, other) {
		if _, ok := sp.take(filepath.Join(other, "x.arrow"), 0); ok {
			t.Fatal("a spare was taken for a destination on another file system")
		}
	} else {
		t.Logf("%s and %s are on one file system: the check of another is left out", dir, other)
	}
	// The time to live.
	now = now.Add(SparesTTL + time.Second)
	if got := sp.Bytes(); got != 0 {
		t.Fatalf("%d bytes kept past the time to live", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "spares")); len(ents) != 0 {
		t.Fatalf("%d spares on disk past the time to live", len(ents))
	}

	// A new process's spares start from an empty folder; Close removes it.
	sp.Put(spareFile(t, dir, "d.arrow", 4, 100))
	again, err := NewSpares(filepath.Join(dir, "spares"), 10_000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "spares")); len(ents) != 0 || again.Bytes() != 0 {
		t.Fatalf("a new Spares found %d leftovers", len(ents))
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "spares")); !os.IsNotExist(err) {
		t.Fatalf("Close left the folder: %v", err)
	}
	var nilSpares *Spares
	if nilSpares.Filled() != nil || nilSpares.Reserve(1<<30, nil) != nil {
		t.Fatal("a nil Spares has a reserve")
	}
	p = spareFile(t, dir, "e.arrow", 5, 10)
	nilSpares.Put(p)
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("a nil Spares kept a file")
	}
}

// TestSparesRelieve: a machine short of memory gets the oldest spares'
// pages back, enough to bring it over the mark, and no more.
func TestSparesRelieve(t *testing.T) {
	dir := shmDir(t)
	sp := newTestSpares(t, dir, 1<<30)
	for i, size := range []int{3000, 2000, 1000} {
		sp.Put(spareFile(t, dir, fmt.Sprintf("old%d", i), 1, size))
	}
	const total = 80000 // the mark: 10000 available
	if freed := sp.Relieve(total, 10000); freed != 0 || sp.Bytes() != 6000 {
		t.Fatalf("not short: freed %d, %d bytes left", freed, sp.Bytes())
	}
	if freed := sp.Relieve(total, 9000); freed != 3000 || sp.Bytes() != 3000 {
		t.Fatalf("short of 1000: freed %d (want the oldest spare, 3000), %d bytes left", freed, sp.Bytes())
	}
	if freed := sp.Relieve(total, 0); freed != 3000 || sp.Bytes() != 0 {
		t.Fatalf("short of everything: freed %d, %d bytes left", freed, sp.Bytes())
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "spares")); len(ents) != 0 {
		t.Fatalf("%d spare files left", len(ents))
	}
	if freed := (*Spares)(nil).Relieve(total, 0); freed != 0 {
		t.Fatal("nil spares freed something")
	}
}

// TestSparesBestFit: a fetch of known size takes the smallest spare that
// holds it, else the largest; of unknown size, the largest.
func TestSparesBestFit(t *testing.T) {
	dir := shmDir(t)
	sp := newTestSpares(t, dir, 1<<30)
	for i, size := range []int{4000, 1000, 8000, 2000, 1000} {
		sp.Put(spareFile(t, dir, fmt.Sprintf("s%d", i), byte(i+1), size))
	}
	for _, c := range []struct {
		want     int64
		size     int
		contents byte // the newest of equals
	}{{1500, 2000, 4}, {900, 1000, 5}, {0, 8000, 3}, {9000, 4000, 1}, {1, 1000, 2}} {
		p, ok := sp.take(filepath.Join(dir, "x.arrow"), c.want)
		b, _ := os.ReadFile(p)
		if !ok || len(b) != c.size || b[0] != c.contents {
			t.Fatalf("for %d bytes took %s (%v): %d bytes of %v, want %d of %d", c.want, p, ok, len(b), b[:min(len(b), 1)], c.size, c.contents)
		}
		os.Remove(p)
	}
	if _, ok := sp.take(filepath.Join(dir, "x.arrow"), 10); ok || sp.Bytes() != 0 {
		t.Fatalf("a spare taken from none (%d bytes left)", sp.Bytes())
	}
}

// TestSparesReserve: a reserve fills the folder with files of that many
// bytes in all, halves down to ReservePiece, their pages allocated; they
// outlive the time to live (spares beyond the reserve do not); Relieve
// takes them back; Close during the filling leaves nothing.
func TestSparesReserve(t *testing.T) {
	defer func(p int64) { ReservePiece = p }(ReservePiece)
	ReservePiece = 64 << 10
	if got, want := fmt.Sprint(reservePieces(1<<20)), "[524288 262144 131072 65536 65536]"; got != want {
		t.Fatalf("pieces of 1 MiB: %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(reservePieces(100<<10)), "[102400]"; got != want {
		t.Fatalf("pieces of 100 KiB: %s, want %s", got, want)
	}
	dir := shmDir(t)
	sp := newTestSpares(t, dir, 4<<20) // above the reserve: Put evicts nothing here
	now := time.Now()
	sp.now = func() time.Time { return now }
	if err := sp.Reserve(1<<20, func(err error) { t.Error(err) }); err != nil {
		t.Fatal(err)
	}
	if err := sp.Reserve(1<<20, nil); err == nil {
		t.Fatal("a second reserve was taken")
	}
	<-sp.Filled()
	if got := sp.Bytes(); got != 1<<20 {
		t.Fatalf("the reserve holds %d bytes, want 1 MiB", got)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "spares"))
	if len(ents) != 5 {
		t.Fatalf("%d files in the reserve, want 5", len(ents))
	}
	for _, e := range ents {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, "spares", e.Name()), &st); err != nil {
			t.Fatal(err)
		}
		if st.Blocks*512 < st.Size || st.Mode&0o777 != 0o644 {
			t.Fatalf("%s: %d bytes, %d allocated, mode %o: want its pages allocated, 0644", e.Name(), st.Size, st.Blocks*512, st.Mode&0o777)
		}
	}
	// A fetch of 200 KiB takes the 256 KiB file.
	p, ok := sp.take(filepath.Join(dir, "x.arrow"), 200<<10)
	if st, err := os.Stat(p); !ok || err != nil || st.Size() != 256<<10 {
		t.Fatalf("took %s (%v, %v)", p, ok, err)
	}
	os.Remove(p)
	// Past the time to live, the oldest spares go while they hold more
	// than the reserve: 768 KiB + 512 KiB, less the oldest (512 KiB).
	sp.Put(spareFile(t, dir, "late.arrow", 1, 512<<10))
	if got := sp.Bytes(); got != 1<<20+256<<10 {
		t.Fatalf("%d bytes kept, want %d", got, 1<<20+256<<10)
	}
	now = now.Add(SparesTTL + time.Second)
	if got := sp.Bytes(); got != 1<<20-256<<10 {
		t.Fatalf("past the time to live %d bytes kept, want %d (the oldest dropped while above the reserve)", got, 1<<20-256<<10)
	}
	// And no further, however old.
	now = now.Add(time.Hour)
	if got := sp.Bytes(); got != 1<<20-256<<10 {
		t.Fatalf("an hour later %d bytes kept, want %d", got, 1<<20-256<<10)
	}
	// Memory short: the reserve goes too.
	if freed := sp.Relieve(8<<20, 0); freed != 1<<20-256<<10 || sp.Bytes() != 0 {
		t.Fatalf("relieved %d, %d left", freed, sp.Bytes())
	}

	// Close while filling: nothing left, nothing after.
	ReservePiece = 4 << 10
	sp2, err := NewSpares(filepath.Join(dir, "spares2"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp2.Reserve(64<<20, nil); err != nil {
		t.Fatal(err)
	}
	sp2.mu.Lock()
	raised := sp2.maxBytes
	sp2.mu.Unlock()
	if raised != 64<<20 {
		t.Fatalf("a reserve of 64 MiB left the limit at %d", raised)
	}
	if err := sp2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "spares2")); !os.IsNotExist(err) {
		t.Fatalf("Close during the filling left the folder: %v", err)
	}
	if err := sp2.Reserve(1<<20, nil); err == nil {
		t.Fatal("a reserve taken after Close")
	}

	// No room: the filling stops and says so, keeping what it made.
	ReservePiece = 64 << 10
	defer func(f func(*os.File, int64) error) { allocateFile = f }(allocateFile)
	made := 0
	allocateFile = func(f *os.File, size int64) error {
		if made++; made > 2 {
			return syscall.ENOSPC
		}
		return allocate(f, size)
	}
	sp3, err := NewSpares(filepath.Join(dir, "spares3"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sp3.Close()
	errs := make(chan error, 1)
	if err := sp3.Reserve(1<<20, func(err error) { errs <- err }); err != nil {
		t.Fatal(err)
	}
	<-sp3.Filled()
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "cannot reserve 128 KiB") || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("a full file system: %v", err)
		}
	default:
		t.Fatal("a reserve larger than its file system was made without a word")
	}
	if got := sp3.Bytes(); got != 512<<10+256<<10 {
		t.Fatalf("%d bytes reserved, want the two files made", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "spares3")); len(ents) != 2 {
		t.Fatalf("%d files in the folder, want the two made", len(ents))
	}
}
