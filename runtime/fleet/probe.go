package fleet

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Machine is what a worker's machine offers, read from the kernel.
type Machine struct {
	Cores                int
	MemoryBytes          int64
	MemoryAvailableBytes int64
	ShmFreeBytes         int64
}

// Probe reads the machine: its CPUs, memory (MemTotal and MemAvailable of
// /proc/meminfo, 0 where there is none) and the bytes free for an
// unprivileged writer in shmDir.
func Probe(shmDir string) Machine {
	m := Machine{Cores: runtime.NumCPU()}
	m.MemoryBytes, m.MemoryAvailableBytes = meminfo()
	var st unix.Statfs_t
	if unix.Statfs(shmDir, &st) == nil {
		m.ShmFreeBytes = int64(st.Bavail) * int64(st.Bsize)
	}
	return m
}

// meminfo is MemTotal and MemAvailable in bytes (0 if unknown).
func meminfo() (total, available int64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "MemTotal":
			total = kb << 10
		case "MemAvailable":
			available = kb << 10
		}
	}
	return total, available
}

// Workdir is a worker's folder in its data dir: its instance id, and a
// lock that keeps a second worker off the same data dir.
type Workdir struct {
	// Instance is the worker's instance id (see Registration.Instance).
	Instance string
	lock     *os.File
}

// OpenWorkdir locks dir (creating it) for this process and reads, or
// makes, the instance id kept there. A dir another worker holds is
// errdefs.ErrUnavailable.
func OpenWorkdir(dir string) (*Workdir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errdefs.New(errdefs.ErrUnavailable, "cannot create the worker folder %s: %v", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrUnavailable, "cannot open the worker lock in %s: %v", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, errdefs.WithHint(errdefs.ErrUnavailable, "stop the other worker, or give this one its own --data-dir",
			"another worker runs on the data dir of %s", dir)
	}
	w := &Workdir{lock: f}
	path := filepath.Join(dir, "instance")
	b, err := os.ReadFile(path)
	switch {
	case err == nil && instanceRE.MatchString(strings.TrimSpace(string(b))):
		w.Instance = strings.TrimSpace(string(b))
	case err == nil || errors.Is(err, fs.ErrNotExist):
		w.Instance = newID()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(w.Instance+"\n"), 0o644); err != nil {
			w.Close()
			return nil, errdefs.New(errdefs.ErrUnavailable, "cannot write the worker's instance id: %v", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			w.Close()
			return nil, errdefs.New(errdefs.ErrUnavailable, "cannot write the worker's instance id: %v", err)
		}
	default:
		w.Close()
		return nil, errdefs.New(errdefs.ErrUnavailable, "cannot read the worker's instance id: %v", err)
	}
	return w, nil
}

// Close releases the lock.
func (w *Workdir) Close() error { return w.lock.Close() }
