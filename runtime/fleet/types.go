package fleet

import (
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// State is a worker's state as the control plane sees it.
type State string

const (
	// StateAlive: the worker heartbeats within the timeout.
	StateAlive State = "alive"
	// StateLost: it missed its heartbeats for the timeout; its lease is
	// dead.
	StateLost State = "lost"
)

// Registration is what a worker tells the control plane when it joins.
// It travels as the JSON body of the register action.
type Registration struct {
	// Name is the worker's name, unique among live workers.
	Name string `json:"name"`
	// Instance identifies the worker's data dir: a worker restarted on it
	// replaces its own live registration.
	Instance string `json:"instance"`
	// Version is the worker's lakehouse version.
	Version string `json:"version"`
	// Addr is the host:port of the worker's Flight data plane, as the
	// control plane and clients reach it.
	Addr string `json:"addr"`
	// Cores, MemoryBytes and ShmFreeBytes are the worker's machine: its
	// CPUs, total memory and free bytes in its /dev/shm folder.
	Cores        int   `json:"cores"`
	MemoryBytes  int64 `json:"memory_bytes"`
	ShmFreeBytes int64 `json:"shm_free_bytes"`
	// Launcher is how the worker starts functions: process or containerd.
	Launcher string `json:"launcher"`
	// Environments are the keys of the package resolutions the worker's
	// package cache holds.
	Environments []string `json:"environments"`
	// Warehouse is the warehouse URI the worker reads data files from
	// (its --warehouse: an s3:// one with its own credentials, or a
	// file:// one it sees on a shared file system); "" for none. The
	// control plane places queries only on workers that read its own.
	Warehouse string `json:"warehouse,omitempty"`
}

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	instanceRE = regexp.MustCompile(`^[0-9a-f]{8,64}$`)
)

// ValidName checks a worker name: lowercase letters, digits, '.', '_'
// and '-', starting with a letter or digit, at most 63 characters.
func ValidName(s string) error {
	if !nameRE.MatchString(s) {
		return errdefs.WithHint(errdefs.ErrInvalidArgument,
			"use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters",
			"invalid worker name %q", s)
	}
	return nil
}

// Validate checks a registration as it enters the control plane.
func (r Registration) Validate() error {
	if err := ValidName(r.Name); err != nil {
		return err
	}
	if !instanceRE.MatchString(r.Instance) {
		return errdefs.New(errdefs.ErrInvalidArgument, "worker %s: invalid instance id %q", r.Name, r.Instance)
	}
	if r.Version == "" {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "run a lakehouse build that names its version",
			"worker %s sent no version", r.Name)
	}
	host, port, err := net.SplitHostPort(r.Addr)
	if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p <= 0 || p > 65535 {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "advertise host:port with --advertise-addr",
			"worker %s: invalid data plane address %q", r.Name, r.Addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return errdefs.WithHint(errdefs.ErrInvalidArgument, "advertise an address others reach with --advertise-addr",
			"worker %s: data plane address %s names no host", r.Name, r.Addr)
	}
	if r.Cores <= 0 || r.MemoryBytes < 0 || r.ShmFreeBytes < 0 {
		return errdefs.New(errdefs.ErrInvalidArgument, "worker %s: invalid resources (cores %d, memory %d, shm free %d)",
			r.Name, r.Cores, r.MemoryBytes, r.ShmFreeBytes)
	}
	if r.Launcher != "process" && r.Launcher != "containerd" {
		return errdefs.New(errdefs.ErrInvalidArgument, "worker %s: unknown launcher %q (process or containerd)", r.Name, r.Launcher)
	}
	return nil
}

// Lease is a registration's answer: the worker names it in every later
// call, and the control plane accepts it while the worker is alive.
type Lease struct {
	// ID is the registration's random id.
	ID string `json:"id"`
	// Epoch counts the registrations of the worker's name on this control
	// plane, from 1.
	Epoch uint64 `json:"epoch"`
	// Control identifies the control plane's run (a new one per start).
	Control string `json:"control"`
	// TimeoutMillis is how long the control plane waits for a heartbeat.
	TimeoutMillis int64 `json:"timeout_ms"`
	// TicketKey is the key (hex) the control plane signs the tickets of
	// the queries it places with; the worker checks them with it. It is
	// sent over the registration's channel: use TLS beyond loopback.
	TicketKey string `json:"ticket_key,omitempty"`
}

// Timeout is TimeoutMillis as a duration.
func (l Lease) Timeout() time.Duration { return time.Duration(l.TimeoutMillis) * time.Millisecond }

// Load is what a worker is doing, sent with each heartbeat.
type Load struct {
	// Running is how many functions and queries it runs.
	Running int `json:"running"`
	// ShmFreeBytes and MemoryAvailableBytes are free now.
	ShmFreeBytes         int64 `json:"shm_free_bytes"`
	MemoryAvailableBytes int64 `json:"memory_available_bytes"`
}

// Heartbeat is a worker's periodic call: it names its lease.
type Heartbeat struct {
	Name  string `json:"name"`
	Lease string `json:"lease"`
	Load  Load   `json:"load"`
}

// WorkerInfo is a worker as the control plane sees it.
type WorkerInfo struct {
	Registration
	State State `json:"state"`
	// Lease and Epoch are the worker's latest registration.
	Lease string `json:"lease"`
	Epoch uint64 `json:"epoch"`
	// Registered and LastHeartbeat are on the control plane's clock;
	// HeartbeatAgeMillis is how long ago the last heartbeat came.
	Registered         time.Time `json:"registered"`
	LastHeartbeat      time.Time `json:"last_heartbeat"`
	HeartbeatAgeMillis int64     `json:"heartbeat_age_ms"`
	Load               Load      `json:"load"`
}
