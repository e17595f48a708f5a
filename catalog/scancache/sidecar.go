package scancache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/zeebo/xxh3"
)

// sidecarVersion is the format of the sidecar; a sidecar of another version
// is ignored (its entry is refetched).
const sidecarVersion = 1

// sidecar records which byte ranges of an entry's data file hold the
// object's bytes. It is replaced whole (write to a temporary name, rename),
// so a reader sees the old or the new one, never a mix.
type sidecar struct {
	Version int    `json:"version"`
	Key     string `json:"key"`
	ETag    string `json:"etag"`
	Size    int64  `json:"size"`
	// Footer is the span of the Thrift footer (without the 8 trailing
	// bytes); zero until it has been fetched.
	Footer span `json:"footer"`
	// Ranges are disjoint and sorted; each one was written whole and its
	// checksum computed from the bytes the source returned.
	Ranges []record `json:"ranges"`
	// Stamp is the data file's identity, size and mtime when every record
	// was last verified; while the file still matches it, the records are
	// trusted without reading them. Nil after any write.
	Stamp *stamp `json:"stamp,omitempty"`
}

// stamp identifies a state of a data file: any write or truncation
// changes its mtime or size, and its ctime, which no one can set back.
type stamp struct {
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
	CtimeNs int64  `json:"ctime_ns"`
}

// stampSettle is how old a data file's times must be before a stamp is
// taken: file times have the kernel tick's granularity (1 to 10 ms), so a
// write in the same tick as the last verified one would not change them.
const stampSettle = 200 * time.Millisecond

func stampOf(f *os.File) stamp {
	fi, err := f.Stat()
	if err != nil {
		return stamp{}
	}
	st := stamp{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Dev, st.Ino, st.CtimeNs = uint64(sys.Dev), sys.Ino, ctimeNs(sys)
	}
	return st
}

// settled reports whether the stamp can be trusted to change with the next
// write: the file was last written well before now.
func (s stamp) settled(now time.Time) bool {
	return s.Ino != 0 && now.Sub(time.Unix(0, max(s.MtimeNs, s.CtimeNs))) > stampSettle
}

// record is one fetched range with the xxh3-64 of its bytes.
type record struct {
	span
	Sum string `json:"xxh3"`
}

func (s *sidecar) spans() []span {
	out := make([]span, len(s.Ranges))
	for i, r := range s.Ranges {
		out[i] = r.span
	}
	return out
}

func (s *sidecar) cached() int64 { return total(s.spans()) }

// add records r, dropping any record it overlaps (the bytes there were just
// rewritten), and keeps the records sorted.
func (s *sidecar) add(r record) {
	kept := s.Ranges[:0]
	for _, old := range s.Ranges {
		if old.Off < r.end() && r.Off < old.end() {
			continue
		}
		kept = append(kept, old)
	}
	i := 0
	for i < len(kept) && kept[i].Off < r.Off {
		i++
	}
	kept = append(kept, record{})
	copy(kept[i+1:], kept[i:])
	kept[i] = r
	s.Ranges = kept
}

// readSidecar loads the sidecar at path. A missing file is (nil, nil); a
// damaged one, or one for another object version, is (nil, nil) too: the
// entry starts over. valid checks key, etag and size.
func readSidecar(path, key, etag string, size int64) (*sidecar, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s sidecar
	if json.Unmarshal(b, &s) != nil || s.Version != sidecarVersion || s.Key != key || s.ETag != etag || s.Size != size {
		return nil, nil
	}
	var prev int64
	for _, r := range s.Ranges {
		if r.Off < prev || r.Len <= 0 || r.end() > size {
			return nil, nil
		}
		prev = r.end()
	}
	return &s, nil
}

// loadSidecar reads a sidecar without checking it against an object, for
// listing.
func loadSidecar(path string) (*sidecar, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s sidecar
	if err := json.Unmarshal(b, &s); err != nil || s.Version != sidecarVersion {
		return nil, fmt.Errorf("sidecar %s is damaged", path)
	}
	return &s, nil
}

// write replaces the sidecar at path.
func (s *sidecar) write(path string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// verify reports whether the bytes of f under r match its checksum.
func verify(f io.ReaderAt, r record, buf []byte) (bool, error) {
	h := xxh3.New()
	for off := r.Off; off < r.end(); {
		n := min(int64(len(buf)), r.end()-off)
		m, err := f.ReadAt(buf[:n], off)
		if int64(m) < n {
			if err == nil || errors.Is(err, io.EOF) {
				return false, nil // truncated
			}
			return false, err
		}
		h.Write(buf[:n])
		off += n
	}
	return strconv.FormatUint(h.Sum64(), 16) == r.Sum, nil
}
