package flight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Spares keeps the /dev/shm pages of fetched intermediates that their run
// no longer needs, for later fetches to write over: on tmpfs, a write
// that allocates its pages costs twice one that writes over pages a file
// already has (memory-cgroup charging and LRU bookkeeping per 4 KiB page,
// half a handoff's receiving CPU). A worker puts the intermediates it
// fetched for a run into its Spares when the run ends, and its fetches
// take one to write into (FetchOptions.Spares).
//
// What a spare held never reaches anyone, and no one reaches what is
// written over it: a file becomes a spare only once in the Spares' own
// folder (mode 0700) with no other name (the tasks that linked it are
// over) and no process holding it open or mapped (a write lease is
// granted: a process a function left behind keeps nothing of it), mode
// 0644 and no extended attributes (nothing a function set stays); a spare
// is written where it lies, cut to what the fetch wrote and checked
// before it is renamed to its destination; a fetch that fails removes it.
// Spares hold at most their byte limit, each for at most their time to
// live (checked whenever one is put or taken) unless the reserve keeps
// it, and are removed by Close and by the next NewSpares on the same
// folder.
//
// A reserve (Reserve) makes a worker's first fetches as cheap as its
// later ones: at start it gives its folder files of that many bytes in
// all, their pages allocated (fallocate), and past their time to live
// spares are removed, oldest first, only while they hold more than the
// reserve.
type Spares struct {
	dir      string
	maxBytes int64
	ttl      time.Duration
	now      func() time.Time

	mu      sync.Mutex
	files   []spare // oldest first
	bytes   int64
	seq     uint64
	reserve int64
	closed  bool
	// stopFill ends the filling of the reserve; filled is done when it
	// has ended.
	stopFill context.CancelFunc
	filled   chan struct{}
}

type spare struct {
	path  string
	size  int64
	since time.Time
}

// SparesTTL is how long a spare is kept by default.
const SparesTTL = 2 * time.Minute

// NewSpares keeps spares in dir (created, or emptied of what an earlier
// process left), up to maxBytes in all, each for ttl (SparesTTL if 0).
func NewSpares(dir string, maxBytes int64, ttl time.Duration) (*Spares, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("cannot remove the spares an earlier process left in %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = SparesTTL
	}
	return &Spares{dir: dir, maxBytes: maxBytes, ttl: ttl, now: time.Now}, nil
}

// Put takes the file at path: it becomes a spare if it is a regular file
// of this process's user, mode 0644 and no extended attributes, that no
// other name links to and no process holds open or mapped, and fits
// under the limit (older spares make room); else it is removed. A nil
// *Spares removes it.
func (s *Spares) Put(path string) {
	if s == nil {
		os.Remove(path)
		return
	}
	st, err := os.Lstat(path)
	if err != nil {
		return
	}
	size := st.Size()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !st.Mode().IsRegular() || size == 0 || size > s.maxBytes {
		os.Remove(path)
		return
	}
	s.seq++
	dst := filepath.Join(s.dir, fmt.Sprintf("spare-%d", s.seq))
	// Moved first, checked after: once its name is in the spares' folder,
	// no one else can link or open the file anew, so a check that finds
	// it unshared holds from then on (a task linking it between a check
	// and the move would otherwise share it).
	if err := os.Rename(path, dst); err != nil {
		os.Remove(path) // another file system: nothing to keep
		return
	}
	if !unshared(dst) {
		os.Remove(dst)
		return
	}
	s.expire()
	for len(s.files) > 0 && s.bytes+size > s.maxBytes {
		s.drop(0)
	}
	s.files = append(s.files, spare{path: dst, size: size, since: s.now()})
	s.bytes += size
}

// take removes a spare from s and returns its path, which the caller now
// owns (false: none, or dst is on another file system than the spares,
// where a spare could not be renamed to it). For a fetch of size bytes
// that is the smallest spare that holds them, else the largest (the rest
// of its pages are allocated as written); of unknown size (0), the
// largest.
func (s *Spares) take(dst string, size int64) (string, bool) {
	if s == nil || !sameDevice(s.dir, filepath.Dir(dst)) {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	if len(s.files) == 0 {
		return "", false
	}
	i := bestFit(s.files, size)
	sp := s.files[i]
	s.files = append(s.files[:i], s.files[i+1:]...)
	s.bytes -= sp.size
	return sp.path, true
}

// bestFit is the index of the smallest of files that holds size bytes,
// else (or size unknown, 0) of the largest; the newest of equals.
func bestFit(files []spare, size int64) int {
	fit, largest := -1, 0
	for i, f := range files {
		if f.size >= files[largest].size {
			largest = i
		}
		if size > 0 && f.size >= size && (fit < 0 || f.size <= files[fit].size) {
			fit = i
		}
	}
	if fit < 0 {
		return largest
	}
	return fit
}

// Bytes is what the spares hold: /dev/shm space that is free for the
// worker's use.
func (s *Spares) Bytes() int64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	return s.bytes
}

// LowMemoryDivisor sets the mark Relieve keeps memory above: a machine
// with less than its memory over this available is short of it.
const LowMemoryDivisor = 8

// Relieve gives memory back when the machine is short of it: the spares'
// pages are memory (tmpfs, never swapped out here) that functions could
// use. With available bytes of total memory available (not counting the
// spares'), below total/LowMemoryDivisor, it removes the oldest spares
// until that mark is met again or none is left, and returns what it
// freed. Called with each heartbeat's probe.
func (s *Spares) Relieve(total, available int64) (freed int64) {
	if s == nil || total <= 0 {
		return 0
	}
	short := total/LowMemoryDivisor - available
	if short <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.files) > 0 && freed < short {
		freed += s.files[0].size
		s.drop(0)
	}
	return freed
}

// Close removes every spare and the folder, once a reserve being filled
// has stopped.
func (s *Spares) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	s.closed = true
	stop, filled := s.stopFill, s.filled
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-filled
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files, s.bytes = nil, 0
	return os.RemoveAll(s.dir)
}

// expire removes the spares older than the time to live, oldest first,
// while they hold more than the reserve; s.mu is held.
func (s *Spares) expire() {
	cutoff := s.now().Add(-s.ttl)
	for len(s.files) > 0 && s.bytes > s.reserve && s.files[0].since.Before(cutoff) {
		s.drop(0)
	}
}

// ReservePiece is the smallest file a reserve is made of: a reserve of n
// bytes is files of n/2, n/4, ... bytes down to this size, and the rest
// (so that a fetch of up to half the reserve finds one file that holds
// it, and smaller ones find smaller files).
var ReservePiece int64 = 64 << 20

// reservePieces are the sizes of the files of a reserve of n bytes.
func reservePieces(n int64) []int64 {
	var sizes []int64
	for n > 0 {
		p := n / 2
		if p < ReservePiece {
			p = n
		}
		sizes = append(sizes, p)
		n -= p
	}
	return sizes
}

// Reserve keeps n bytes of spares past their time to live (raising the
// byte limit to n if it is lower), and fills the folder with that many
// bytes of new files, their pages allocated, in the background: Filled
// says when it is done. What cannot be allocated (the file system is
// full) ends the filling; report, if set, is told. Relieve removes a
// reserve as any spare; later fetches' files make it up again. A second
// Reserve, or one after Close, is refused.
func (s *Spares) Reserve(n int64, report func(error)) error {
	if s == nil || n <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.filled != nil {
		return errors.New("the spares have a reserve already, or are closed")
	}
	s.reserve = n
	s.maxBytes = max(s.maxBytes, n)
	ctx, cancel := context.WithCancel(context.Background())
	s.stopFill, s.filled = cancel, make(chan struct{})
	go func() {
		defer close(s.filled)
		if err := s.fill(ctx, reservePieces(n)); err != nil && ctx.Err() == nil && report != nil {
			report(err)
		}
	}()
	return nil
}

// Filled is closed once a reserve's files are made (nil: no Reserve).
func (s *Spares) Filled() <-chan struct{} {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.filled
}

// fill makes a file of each size, its pages allocated, and keeps it as
// a spare.
func (s *Spares) fill(ctx context.Context, sizes []int64) error {
	for _, size := range sizes {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.mu.Lock()
		s.seq++
		path := filepath.Join(s.dir, fmt.Sprintf("reserve-%d", s.seq))
		s.mu.Unlock()
		if err := newAllocated(path, size); err != nil {
			os.Remove(path)
			return fmt.Errorf("cannot reserve %s of spares in %s: %w", sizeText(size), s.dir, err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			os.Remove(path)
			return nil
		}
		s.files = append(s.files, spare{path: path, size: size, since: s.now()})
		s.bytes += size
		s.mu.Unlock()
	}
	return nil
}

// newAllocated creates a file of size bytes at path, mode 0644, its pages
// allocated (zeros).
func newAllocated(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	// The mode whatever the umask: Put's check of a spare wants 0644.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := allocateFile(f, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// allocateFile is allocate; tests make it fail.
var allocateFile = allocate

// sizeText is n as a whole number of MiB or GiB.
func sizeText(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

// drop removes spare i; s.mu is held.
func (s *Spares) drop(i int) {
	os.Remove(s.files[i].path)
	s.bytes -= s.files[i].size
	s.files = append(s.files[:i], s.files[i+1:]...)
}
