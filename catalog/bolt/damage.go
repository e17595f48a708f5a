package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/bits"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Damage.
//
// bbolt trusts its file: it maps it and follows page ids wherever they
// point, so a truncated file makes it read past the end of the mapping (a
// SIGBUS that kills the process), and garbage makes it panic. A damaged
// catalog must instead be reported, once, as an errdefs.ErrDataLoss error
// that says how to recover. Three layers do that:
//
//   - checkFile reads the file's size and both meta pages with plain reads
//     before bbolt maps it: magic, version, page size, checksum, and that
//     the pages a meta page refers to lie inside the file.
//   - Open refuses a file without the lakehouse layout (meta/version and the
//     top-level buckets); a file is created only where none exists, whole,
//     under a temporary name (see create), so an empty or foreign bbolt file
//     is never a new catalog.
//   - Every bbolt call runs with debug.SetPanicOnFault, and a memory fault or
//     a panic raised inside bbolt is recovered at the Store's boundary
//     (catchDamage) and turned into the same error. After that the Store
//     refuses further transactions.
//
// Damage that leaves every page well-formed (a flipped byte inside a value)
// is found by decoding (ErrDataLoss errors naming the key) or by Check.

// damagedHint says what to do about a damaged catalog file.
const damagedHint = "restore it from a backup (`lakehouse backup FILE` makes one) " +
	"or move it aside to start with an empty catalog"

// damagedError reports that the catalog file at path is damaged; why says
// how, for people who look closer.
func damagedError(path, why string, args ...any) error {
	return errdefs.New(errdefs.ErrDataLoss, "the catalog file %s is damaged: %s (%s)",
		path, damagedHint, fmt.Sprintf(why, args...))
}

// bbolt's file format (go.etcd.io/bbolt/internal/common: page.go, meta.go).
// A page starts with a 16-byte header: id uint64, flags uint16, count
// uint16, overflow uint32. Pages 0 and 1 are meta pages; the meta follows
// the header: magic, version, page size, flags (uint32 each), root bucket
// (root pgid, sequence: uint64 each), freelist pgid, high-water mark pgid,
// txid, checksum (uint64 each). The checksum is FNV-1a 64 of the meta up to
// the checksum. Integers are in the machine's byte order.
const (
	pageHeaderSize = 16
	metaSize       = 64
	boltMagic      = 0xED0CDAED
	boltVersion    = 2

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10

	pgidNoFreelist = ^uint64(0)

	minPageSize = 1 << 10
	maxPageSize = 1 << 24
)

// boltMeta is one decoded meta page.
type boltMeta struct {
	pageSize uint64
	root     uint64
	freelist uint64
	hwm      uint64 // pages in use: every page id is below it
	txid     uint64
}

// pageHeader is a decoded page header.
type pageHeader struct {
	id       uint64
	flags    uint16
	overflow uint64
}

func decodePageHeader(b []byte) pageHeader {
	ne := binary.NativeEndian
	return pageHeader{id: ne.Uint64(b[0:]), flags: ne.Uint16(b[8:]), overflow: uint64(ne.Uint32(b[12:]))}
}

// decodeMeta decodes and validates meta page index (0 or 1) from b, which
// holds at least the page header and the meta. It returns why the page is
// unusable, or "".
func decodeMeta(b []byte, index uint64) (boltMeta, string) {
	ne := binary.NativeEndian
	h := decodePageHeader(b)
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	if ne.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, fmt.Sprintf("meta page %d has no bbolt magic number: this is not a bbolt file", index)
	}
	if v := ne.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Sprintf("meta page %d has bbolt format version %d, not %d", index, v, boltVersion)
	}
	sum := fnv.New64a()
	sum.Write(m[:56])
	if sum.Sum64() != ne.Uint64(m[56:]) {
		return boltMeta{}, fmt.Sprintf("meta page %d has a bad checksum", index)
	}
	if h.id != index || h.flags != metaPageFlag {
		return boltMeta{}, fmt.Sprintf("meta page %d has a bad page header (id %d, flags %#x)", index, h.id, h.flags)
	}
	meta := boltMeta{
		pageSize: uint64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		hwm:      ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}
	switch {
	case meta.pageSize < minPageSize || meta.pageSize > maxPageSize || bits.OnesCount64(meta.pageSize) != 1:
		return boltMeta{}, fmt.Sprintf("meta page %d has an impossible page size %d", index, meta.pageSize)
	case meta.hwm < 4 || meta.hwm > (1<<62)/meta.pageSize:
		return boltMeta{}, fmt.Sprintf("meta page %d has an impossible page count %d", index, meta.hwm)
	case meta.root < 2 || meta.root >= meta.hwm:
		return boltMeta{}, fmt.Sprintf("meta page %d puts the root at page %d, outside pages 2 to %d", index, meta.root, meta.hwm-1)
	case meta.freelist != pgidNoFreelist && (meta.freelist < 2 || meta.freelist >= meta.hwm):
		return boltMeta{}, fmt.Sprintf("meta page %d puts the freelist at page %d, outside pages 2 to %d", index, meta.freelist, meta.hwm-1)
	}
	return meta, ""
}

// checkFile checks, before bbolt maps the file at path, that it is a whole
// bbolt file: both meta pages valid and agreeing on the page size, the
// pages they count (the high-water mark) inside the file, and the root and
// freelist pages of the current one what it says they are. It holds a shared lock while it reads, so a writer in another
// process is never caught halfway through a meta page; it waits for the
// lock up to timeout.
func checkFile(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockShared(f, timeout); err != nil {
		return err
	}
	// Closing f releases the lock.
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return damagedError(path, "it is not a regular file")
	}
	size := uint64(st.Size())
	if size == 0 {
		return damagedError(path, "it is empty")
	}
	if size < pageHeaderSize+metaSize {
		return damagedError(path, "it is %d bytes long, too short for a catalog file", size)
	}
	buf := make([]byte, pageHeaderSize+metaSize)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	m0, why := decodeMeta(buf, 0)
	if why != "" {
		return damagedError(path, "%s", why)
	}
	if size < 2*m0.pageSize {
		return damagedError(path, "it is %d bytes long, shorter than its two meta pages of %d bytes", size, m0.pageSize)
	}
	if _, err := f.ReadAt(buf, int64(m0.pageSize)); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	m1, why := decodeMeta(buf, 1)
	if why != "" {
		return damagedError(path, "%s", why)
	}
	if m1.pageSize != m0.pageSize {
		return damagedError(path, "its meta pages disagree on the page size (%d and %d)", m0.pageSize, m1.pageSize)
	}
	for i, m := range []boltMeta{m0, m1} {
		if need := m.hwm * m.pageSize; size < need {
			return damagedError(path, "it is %d bytes long, but meta page %d uses %d pages of %d bytes (%d bytes): it was truncated",
				size, i, m.hwm, m.pageSize, need)
		}
	}
	// bbolt uses the meta of the later transaction. The other one is the
	// state before it, whose pages the later transaction may have reused,
	// so only the current one's pages must still be what it says.
	cur, i := m0, 0
	if m1.txid > m0.txid {
		cur, i = m1, 1
	}
	if why := checkPage(f, cur, cur.root, "root", branchPageFlag, leafPageFlag); why != "" {
		return damagedError(path, "meta page %d: %s", i, why)
	}
	if cur.freelist != pgidNoFreelist {
		if why := checkPage(f, cur, cur.freelist, "freelist", freelistPageFlag); why != "" {
			return damagedError(path, "meta page %d: %s", i, why)
		}
	}
	return nil
}

// checkPage checks the header of page id, which m refers to as what: its
// type is one of flags and it ends below the high-water mark.
func checkPage(f *os.File, m boltMeta, id uint64, what string, flags ...uint16) string {
	b := make([]byte, pageHeaderSize)
	if _, err := f.ReadAt(b, int64(id*m.pageSize)); err != nil {
		return fmt.Sprintf("the %s page %d cannot be read: %v", what, id, err)
	}
	h := decodePageHeader(b)
	if h.id != id {
		return fmt.Sprintf("the %s page %d says it is page %d", what, id, h.id)
	}
	ok := false
	for _, fl := range flags {
		ok = ok || h.flags == fl
	}
	if !ok {
		return fmt.Sprintf("the %s page %d has page type %#x", what, id, h.flags)
	}
	if id+h.overflow >= m.hwm {
		return fmt.Sprintf("the %s page %d runs to page %d, past the last page %d", what, id, id+h.overflow, m.hwm-1)
	}
	return ""
}

// lockShared takes a shared flock on f, waiting up to timeout for a writer
// (which holds an exclusive one for as long as it has the file open).
func lockShared(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if time.Now().After(deadline) {
			return lockedError(f.Name(), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lockedError(path string, timeout time.Duration) error {
	return errdefs.WithHint(errdefs.ErrUnavailable,
		"wait for it to finish, or use another --data-dir",
		"the data directory is in use by another lakehouse process (%s stayed locked for %s)", path, timeout)
}

// tooLong returns a damaged-file error if the keys and values b, read
// from tx, claim more bytes than the whole file: only a damaged leaf page
// says so (bbolt does not check), and copying such a value would read
// gigabytes of whatever memory follows the map.
func tooLong(tx *bolt.Tx, b ...[]byte) error {
	n := 0
	for _, x := range b {
		n += len(x)
	}
	if size := tx.Size(); int64(n) > size {
		return damagedError(tx.DB().Path(), "a key or value claims %d bytes, more than the file's %d", n, size)
	}
	return nil
}

// guardFault makes a memory fault on this goroutine a panic that
// catchDamage can recover, instead of a crash. It returns the previous
// setting for catchDamage to restore.
func guardFault() bool { return debug.SetPanicOnFault(true) }

// catchDamage, deferred by a function that calls bbolt (after guardFault),
// turns a memory fault or a panic raised inside bbolt into a damaged-file
// error in *errp and marks s damaged. Any other panic (a bug in the
// caller's fn) goes on as it was.
func (s *Store) catchDamage(errp *error, prevFault bool) {
	debug.SetPanicOnFault(prevFault)
	r := recover()
	if r == nil {
		return
	}
	if !isDamagePanic(r) {
		panic(r)
	}
	*errp = s.markDamaged(fmt.Sprint(r))
}

// isDamagePanic reports whether the panic value r, being recovered by the
// deferred function that calls it, came from a fault or from inside bbolt.
func isDamagePanic(r any) bool {
	if e, ok := r.(interface{ Addr() uintptr }); ok && e.Addr() != 0 {
		return true // a fault on a mapped page: SIGBUS past the end of the file, or SIGSEGV
	}
	// The frames below runtime.gopanic are the panicking function and its
	// callers; the first one outside the runtime says who panicked.
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			panicking = true
		case panicking && !strings.HasPrefix(f.Function, "runtime."):
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}

// markDamaged records that s found its file damaged (how), so later
// transactions fail at once, and returns the error.
func (s *Store) markDamaged(how string) error {
	s.damageMu.Lock()
	defer s.damageMu.Unlock()
	if s.damaged == nil {
		s.damaged = damagedError(s.path, "reading it failed: %s", how)
	}
	return s.damaged
}

// Damaged returns the error that made s stop, or nil while it is sound.
func (s *Store) Damaged() error {
	s.damageMu.Lock()
	defer s.damageMu.Unlock()
	return s.damaged
}

// isNotExist reports whether err says the file is missing.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
