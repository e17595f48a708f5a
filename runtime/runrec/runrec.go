// Package runrec keeps run records: one folder per run under
// <data-dir>/runs/<id>/ holding record.json (the run's facts, rewritten
// atomically as the run goes), logs.jsonl (every line every function
// printed, appended as it happens) and code/ (the exact project files the
// run shipped). Records are plain files, so `lakehouse runs ls/get/logs`
// read them while a run holds the catalog, and they stay until deleted.
package runrec

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/proc"
)

// Status is where a run is.
type Status string

const (
	StatusPlanned   Status = "planned" // a dry run: planned, nothing ran
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
	// StatusKilled is a run whose process died without finishing it
	// (SIGKILL, power loss); it is never written, only reported.
	StatusKilled Status = "killed"
)

// Model states.
const (
	StateWaiting  = "waiting"
	StateStarting = "starting"
	StateRunning  = "running"
	StateDone     = "done"
	StateReused   = "reused" // output taken from the result cache
	StateFailed   = "failed"
	StateSkipped  = "skipped" // not run because the run failed first
)

// Record is everything known about one run.
type Record struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	User    string `json:"user"`
	// Target is the branch the run writes to; RunBranch the branch it
	// wrote on (deleted after a successful merge).
	Target    string `json:"target"`
	RunBranch string `json:"run_branch,omitempty"`
	// BranchKept says whether RunBranch still exists (failed runs keep it
	// until --keep-failed has passed).
	BranchKept  bool   `json:"run_branch_kept"`
	StartCommit string `json:"start_commit"`
	// BaseCommit is where the run branch started when that is not
	// StartCommit (a rerun writes over its target's head).
	BaseCommit string `json:"base_commit,omitempty"`
	EndCommit  string `json:"end_commit,omitempty"`
	Status     Status `json:"status"`
	Error      string `json:"error,omitempty"`
	// FailedModel names the model whose failure ended the run.
	FailedModel string          `json:"failed_model,omitempty"`
	Params      map[string]any  `json:"parameters"`
	Flags       Flags           `json:"flags"`
	ProjectDir  string          `json:"project_dir"`
	CodeHash    string          `json:"code_hash"`
	Files       []string        `json:"files"`
	Envs        []Env           `json:"environments"`
	Models      []*Model        `json:"models"`
	Warnings    []string        `json:"warnings,omitempty"`
	RerunOf     string          `json:"rerun_of,omitempty"`
	Matches     map[string]bool `json:"rerun_matches,omitempty"`
	Launcher    string          `json:"launcher,omitempty"`
	Started     time.Time       `json:"started"`
	Ended       time.Time       `json:"ended,omitzero"`
	Duration    float64         `json:"duration_s,omitempty"`
	PID         int             `json:"pid"`
	// PIDStart is when the process PID started (clock ticks since boot),
	// which tells it from a later process given the same pid.
	PIDStart   int64             `json:"pid_start,omitempty"`
	Boot       string            `json:"boot_id"`
	Properties map[string]string `json:"properties,omitempty"`
}

// Flags are the run's options.
type Flags struct {
	Strict     bool   `json:"strict"`
	NoCache    bool   `json:"no_cache"`
	NoFuse     bool   `json:"no_fuse,omitempty"`
	DryRun     bool   `json:"dry_run"`
	KeepFailed string `json:"keep_failed,omitempty"`
}

// Env is a Python environment the run used.
type Env struct {
	Models      []string `json:"models"`
	Python      string   `json:"python"`
	Interpreter string   `json:"interpreter"`
	Requested   []string `json:"requested"`
	// Packages are the resolved distributions, name==version.
	Packages []string `json:"packages"`
}

// Model is one function of the run.
type Model struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Language string    `json:"language"`
	State    string    `json:"state"`
	Started  time.Time `json:"started,omitzero"`
	Ended    time.Time `json:"ended,omitzero"`
	Seconds  float64   `json:"seconds"`
	Rows     int64     `json:"rows"`
	Bytes    int64     `json:"bytes,omitempty"`
	// Table and Snapshot say where a materialized output was written.
	Table    string `json:"table,omitempty"`
	Snapshot int64  `json:"snapshot_id,omitempty"`
	// Fingerprint is an order-insensitive hash of the output's rows.
	Fingerprint string `json:"fingerprint,omitempty"`
	CacheKey    string `json:"cache_key,omitempty"`
	// FusedInto is the model whose interpreter ran this one (a fused
	// chain: its table came in memory, and its output was not written).
	FusedInto   string `json:"fused_into,omitempty"`
	Expectation *bool  `json:"expectation,omitempty"`
	Error       string `json:"error,omitempty"`
	Traceback   string `json:"traceback,omitempty"`
}

// Model returns the model record of name (nil if none).
func (r *Record) Model(name string) *Model {
	for _, m := range r.Models {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Live is the status as a reader should see it: a running record whose
// process is gone is killed.
func (r *Record) Live() Status {
	if r.Status == StatusRunning && !processAlive(r.PID, r.PIDStart, r.Boot) {
		return StatusKilled
	}
	return r.Status
}

// LogLine is one line of logs.jsonl.
type LogLine struct {
	Time   time.Time `json:"t"`
	Model  string    `json:"model,omitempty"`
	Stream string    `json:"stream"` // stdout, stderr or lakehouse
	Text   string    `json:"text"`
}

// Store is the runs folder.
type Store struct {
	Dir string
}

// Open returns the store under dir, creating it.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Store{Dir: dir}, nil
}

// NewID returns a run id: time-ordered (seconds since 2020, hex) and
// random, 16 hex digits.
func NewID(now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	secs := uint32(now.Unix() - 1577836800)
	return fmt.Sprintf("%08x%s", secs, hex.EncodeToString(b[:]))
}

func (s *Store) dir(id string) string { return filepath.Join(s.Dir, id) }

// CodeDir is where a run's project files are kept.
func (s *Store) CodeDir(id string) string { return filepath.Join(s.dir(id), "code") }

// Create writes a new record (and its folder). It fills PID, PIDStart and
// Boot.
func (s *Store) Create(r *Record) error {
	if !validID(r.ID) {
		return errdefs.New(errdefs.ErrInvalidArgument, "invalid run id %q", r.ID)
	}
	if err := os.Mkdir(s.dir(r.ID), 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return errdefs.New(errdefs.ErrAlreadyExists, "run %s already exists", r.ID)
		}
		return err
	}
	r.PID, r.Boot = os.Getpid(), proc.BootID()
	r.PIDStart = proc.StartTicks(r.PID)
	return s.Save(r)
}

// Save rewrites the record atomically.
func (s *Store) Save(r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir(r.ID), ".record.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir(r.ID), "record.json"))
}

// Get reads a record by id or unique id prefix (at least 4 digits).
func (s *Store) Get(id string) (*Record, error) {
	full, err := s.resolve(id)
	if err != nil {
		return nil, err
	}
	return s.read(full)
}

func (s *Store) read(id string) (*Record, error) {
	b, err := os.ReadFile(filepath.Join(s.dir(id), "record.json"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, notFound(id)
		}
		return nil, err
	}
	var r Record
	// Numbers stay as written: an int parameter of 1000000 or 2^53+1 must
	// come back as that int (rerun passes it to --param again), not as
	// the float64 1e+06.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("run %s: record.json is damaged: %w", id, err)
	}
	return &r, nil
}

func notFound(id string) error {
	return errdefs.WithHint(errdefs.ErrNotFound, "list runs with `lakehouse runs ls`", "no run %s", id)
}

func validID(id string) bool {
	if len(id) < 4 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// resolve turns an id prefix into the one id it denotes.
func (s *Store) resolve(id string) (string, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if !validID(id) {
		return "", errdefs.WithHint(errdefs.ErrInvalidArgument, "run ids are hex digits, as `lakehouse runs ls` shows them (at least 4)",
			"invalid run id %q", id)
	}
	if _, err := os.Stat(filepath.Join(s.dir(id), "record.json")); err == nil {
		return id, nil
	}
	ids, err := s.ids()
	if err != nil {
		return "", err
	}
	var match []string
	for _, x := range ids {
		if strings.HasPrefix(x, id) {
			match = append(match, x)
		}
	}
	switch len(match) {
	case 0:
		return "", notFound(id)
	case 1:
		return match[0], nil
	}
	return "", errdefs.WithHint(errdefs.ErrInvalidArgument, "give more digits", "run id %s is ambiguous: %s", id, strings.Join(match, ", "))
}

func (s *Store) ids() ([]string, error) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && validID(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out, nil
}

// List returns every record, newest first. Damaged records are skipped.
func (s *Store) List() ([]*Record, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, id := range ids {
		r, err := s.read(id)
		if err != nil {
			continue
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, nil
}

// Delete removes a run's record, logs and code.
func (s *Store) Delete(id string) error {
	full, err := s.resolve(id)
	if err != nil {
		return err
	}
	return os.RemoveAll(s.dir(full))
}

// Logs appends log lines of a run. It is safe for concurrent use.
type Logs struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

// OpenLogs opens a run's log for appending.
func (s *Store) OpenLogs(id string) (*Logs, error) {
	f, err := os.OpenFile(filepath.Join(s.dir(id), "logs.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Logs{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// Write appends one line; it is on disk for readers at the next Flush
// (which Write does for every line of a function: lines are few).
func (l *Logs) Write(line LogLine) {
	b, _ := json.Marshal(line)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return
	}
	l.w.Write(b)
	l.w.WriteByte('\n')
	l.w.Flush()
}

// Close flushes and closes the log.
func (l *Logs) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return nil
	}
	err := l.w.Flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.w = nil
	return err
}

// ReadLogs calls fn for each log line of a run (id or prefix), in order.
func (s *Store) ReadLogs(id string, fn func(LogLine) error) error {
	full, err := s.resolve(id)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(s.dir(full), "logs.jsonl"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var l LogLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // a line cut by a crash
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	return sc.Err()
}

// projectFile says whether a project file is part of the code a run ships.
// A link to a regular file counts as that file (the planner reads through
// it, so the run must have it).
func projectFile(p string, d fs.DirEntry) bool {
	name := d.Name()
	if strings.HasPrefix(name, ".") || name == "__pycache__" {
		return false
	}
	if d.IsDir() {
		return true
	}
	if !d.Type().IsRegular() {
		if d.Type()&fs.ModeSymlink == 0 {
			return false
		}
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".py", ".sql", ".yml", ".yaml", ".json", ".txt", ".toml", ".cfg":
		return true
	}
	return false
}

// maxCode bounds the code a run snapshots.
const maxCode = 64 << 20

// SnapshotCode copies the project's code files (Python, SQL, YAML and small
// text files; no hidden folders) into the run's code folder and returns
// their paths and a SHA-256 over names and contents.
func (s *Store) SnapshotCode(id, projectDir string) (files []string, hash string, err error) {
	dst := s.CodeDir(id)
	h := sha256.New()
	var total int64
	err = filepath.WalkDir(projectDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(projectDir, p)
		if rel == "." {
			return os.MkdirAll(dst, 0o755)
		}
		if !projectFile(p, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += int64(len(b))
		if total > maxCode {
			return errdefs.WithHint(errdefs.ErrInvalidArgument, "keep data files out of the project folder",
				"the project folder %s holds more than %d MiB of code files", projectDir, maxCode>>20)
		}
		files = append(files, filepath.ToSlash(rel))
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
		return os.WriteFile(filepath.Join(dst, rel), b, 0o444)
	})
	if err != nil {
		return nil, "", err
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

// processAlive reports whether pid (started at start, of boot) still
// runs.
func processAlive(pid int, start int64, boot string) bool {
	if boot != proc.BootID() || !proc.Running(pid) {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	if start != 0 {
		// The same pid, started at the same tick: the same process,
		// whatever its binary is called.
		return proc.StartTicks(pid) == start
	}
	// A record without a start time: a recycled pid must at least be a
	// lakehouse.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err != nil || strings.Contains(string(b), "lakehouse") || strings.Contains(string(b), ".test")
}

// Signal sends sig to the process running a live run.
func (r *Record) Signal(sig syscall.Signal) error {
	if r.Live() != StatusRunning {
		return errdefs.New(errdefs.ErrFailedPrecondition, "run %s is not running (%s)", r.ID, r.Live())
	}
	return syscall.Kill(r.PID, sig)
}
