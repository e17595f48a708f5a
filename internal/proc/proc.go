// Package proc answers questions about processes on this machine from
// /proc: the boot they belong to, whether one still runs, when it started.
// Owners recorded as pid@boot (containers, run records) are checked here.
package proc

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// BootID identifies this boot of the machine ("" if unknown).
func BootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// Running reports whether pid exists and has not exited. A killed process
// stays a zombie until its parent reaps it; it counts as exited.
func Running(pid int) bool {
	if pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	fields := stat(pid)
	return fields == nil || fields[0] != "Z"
}

// StartTicks is when pid started, in clock ticks since boot (0 if unknown).
func StartTicks(pid int) int64 {
	fields := stat(pid)
	if len(fields) < 20 {
		return 0
	}
	v, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// stat is /proc/PID/stat from field 3 (the state) on; nil if unreadable.
// The command name (field 2) may hold spaces and parentheses, so fields
// start after its last closing parenthesis.
func stat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}
