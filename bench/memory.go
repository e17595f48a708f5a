package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PSS is a process's proportional set size from /proc/PID/smaps_rollup, in
// bytes: each page it maps counts divided by the number of processes mapping
// it, so the PSS of a group of processes adds up to the memory they use.
type PSS struct {
	Total int64 // Pss
	Anon  int64 // Pss_Anon: private heap, e.g. a decoded Parquet table
	File  int64 // Pss_File: the interpreter and shared libraries
	Shmem int64 // Pss_Shmem: mapped /dev/shm files, e.g. the IPC table
}

func (p PSS) add(q PSS) PSS {
	return PSS{p.Total + q.Total, p.Anon + q.Anon, p.File + q.File, p.Shmem + q.Shmem}
}

// ReadPSS reads the PSS of a live process.
func ReadPSS(pid int) (PSS, error) {
	var p PSS
	fields := map[string]*int64{"Pss:": &p.Total, "Pss_Anon:": &p.Anon, "Pss_File:": &p.File, "Pss_Shmem:": &p.Shmem}
	found, err := readKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), fields)
	if err == nil && found["Pss:"] == 0 {
		err = fmt.Errorf("/proc/%d/smaps_rollup has no Pss line", pid)
	}
	return p, err
}

// ReadPeakRSS reads the most resident memory a live process has had
// (VmHWM in /proc/PID/status).
func ReadPeakRSS(pid int) (int64, error) {
	var n int64
	found, err := readKB(fmt.Sprintf("/proc/%d/status", pid), map[string]*int64{"VmHWM:": &n})
	if err == nil && found["VmHWM:"] == 0 {
		err = fmt.Errorf("/proc/%d/status has no VmHWM line", pid)
	}
	return n, err
}

// MemAvailable is the kernel's estimate of memory available to new work.
func MemAvailable() (int64, error) {
	var n int64
	found, err := readKB("/proc/meminfo", map[string]*int64{"MemAvailable:": &n})
	if err == nil && found["MemAvailable:"] == 0 {
		err = fmt.Errorf("/proc/meminfo has no MemAvailable line")
	}
	return n, err
}

// readKB sets each field named in want (a "Name:" prefix) from a
// /proc file of "Name: N kB" lines, in bytes, and counts what it found.
func readKB(path string, want map[string]*int64) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	found := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 || fs[2] != "kB" {
			continue
		}
		dst, ok := want[fs[0]]
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(fs[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, sc.Text(), err)
		}
		*dst = kb << 10
		found[fs[0]]++
	}
	return found, sc.Err()
}
