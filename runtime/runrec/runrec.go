// Package runrec keeps run records: one folder per run under
// <data-dir>/runs/<id>/ holding record.json (the run's facts, rewritten
// atomically as the run goes), logs.jsonl (every line every function
// printed, appended as it happens) and code (a link to the exact project
// files the run shipped). Records are plain files, so `lakehouse runs
// ls/get/logs` read them while a run holds the catalog, and they stay
// until deleted.
//
//	<data-dir>/runs/
//	├── <id>/
//	│   ├── record.json        written whole: a run folder appears with it
//	│   ├── logs.jsonl
//	│   └── code -> ../code/<code hash>
//	├── code/<code hash>/      the shipped files, read-only, shared by runs
//	│                          of the same code (code.go)
//	├── code/.tmp-<id>-*/      run id's code being copied
//	└── .new-<pid>-<id>-*/     a run folder being created
//
// # Invariants
//
//   - A listed run has a record: Create builds the folder under a hidden
//     name and renames it into place; leftovers of a killed process (a
//     hidden folder, an empty .record.json.tmp) are removed by the next
//     Create or List, a code/.tmp-<id>-* folder by the next List.
//   - Code is never changed in place; `rerun` hashes it again against the
//     record (VerifyCode) and refuses code that differs.
//   - A running record whose process is gone reads as killed, ended at
//     its last heartbeat, save or log line.
package runrec

import (
	"bufio"
	"bytes"
	"crypto/rand"
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

	"golang.org/x/sys/unix"

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
	// StatusInterrupted is a run its server stopped: cancelled at a
	// shutdown that it could not outlast, or found unfinished (its server
	// killed) when the server started again. Its target is untouched.
	StatusInterrupted Status = "interrupted"
	// StatusKilled is a run whose process died without finishing it
	// (SIGKILL, power loss); it is never written, only reported, with
	// the run's duration up to its last sign of life.
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
	// Worker is the fleet worker that ran a Python model; Attempts how
	// many times it was started, when more than once (a lost worker).
	Worker   string `json:"worker,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
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

// Create writes a new record (and its folder). It fills PID, PIDStart and
// Boot. The folder appears with its record in it (built under a hidden
// name and renamed), so a process killed meanwhile leaves no run without
// a record; what such a process leaves under the hidden name is removed
// by the next Create or List.
func (s *Store) Create(r *Record) error {
	if !validID(r.ID) {
		return errdefs.New(errdefs.ErrInvalidArgument, "invalid run id %q", r.ID)
	}
	s.cleanNew()
	if _, err := os.Lstat(s.dir(r.ID)); err == nil {
		return errdefs.New(errdefs.ErrAlreadyExists, "run %s already exists", r.ID)
	}
	r.PID, r.Boot = os.Getpid(), proc.BootID()
	r.PIDStart = proc.StartTicks(r.PID)
	tmp, err := os.MkdirTemp(s.Dir, fmt.Sprintf("%s%d-%s-", newPrefix, r.PID, r.ID))
	if err != nil {
		return err
	}
	os.Chmod(tmp, 0o755)
	b, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, "record.json"), b, 0o644)
	}
	if err == nil {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, s.dir(r.ID), unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EEXIST) {
			err = errdefs.New(errdefs.ErrAlreadyExists, "run %s already exists", r.ID)
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	return err
}

// newPrefix names run folders being created: .new-<pid>-<id>-<random>.
const newPrefix = ".new-"

// recordTmp is the temporary file Save renames over record.json.
const recordTmp = ".record.json.tmp"

// Save rewrites the record atomically.
func (s *Store) Save(r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir(r.ID), recordTmp)
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir(r.ID), "record.json"))
}

// Heartbeat marks a run as alive now (the modification time of its
// folder): a run whose process dies is reported with the duration up to
// its last heartbeat, record save or log line.
func (s *Store) Heartbeat(id string) error {
	now := time.Now()
	return os.Chtimes(s.dir(id), now, now)
}

// staleAfter is how old a leftover of an interrupted Create or Save must
// be to be removed when its process cannot be told (a Create or Save takes
// milliseconds).
const staleAfter = time.Minute

// cleanNew removes run folders whose Create was interrupted: their
// process is gone, or they are older than staleAfter.
func (s *Store) cleanNew() {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), newPrefix)
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		n, err := strconv.Atoi(pid)
		info, ierr := e.Info()
		if err != nil || !proc.Running(n) || ierr == nil && time.Since(info.ModTime()) > staleAfter {
			os.RemoveAll(filepath.Join(s.Dir, e.Name()))
		}
	}
}

// cleanRun removes what an interrupted Save left in the folder of run id
// (rec nil: the folder has no readable record) and returns the record,
// recovered from a complete temporary file if there is one. A folder
// without a record older than staleAfter (an older lakehouse killed while
// creating it) is removed.
func (s *Store) cleanRun(id string, rec *Record) *Record {
	tmp := filepath.Join(s.dir(id), recordTmp)
	st, err := os.Lstat(tmp)
	if err != nil && rec != nil {
		return rec
	}
	if rec == nil {
		if err == nil {
			if b, rerr := os.ReadFile(tmp); rerr == nil && json.Valid(b) && len(b) > 0 {
				// A whole record whose rename did not happen.
				if os.Rename(tmp, filepath.Join(s.dir(id), "record.json")) == nil {
					if r, err := s.read(id); err == nil {
						return r
					}
				}
			}
		}
		if dst, derr := os.Stat(s.dir(id)); derr == nil && time.Since(dst.ModTime()) > staleAfter {
			if _, rerr := os.Stat(filepath.Join(s.dir(id), "record.json")); errors.Is(rerr, fs.ErrNotExist) {
				s.Delete(id)
			}
		}
		return nil
	}
	if rec.Live() != StatusRunning || time.Since(st.ModTime()) > staleAfter {
		os.Remove(tmp)
	}
	return rec
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
	defer s.settle(&r)
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

// settle reports a running record whose process is gone as killed, ended
// at its last sign of life: the latest of its heartbeat, record save and
// log line.
func (s *Store) settle(r *Record) {
	if r.ID == "" || r.Status != StatusRunning || r.Live() == StatusRunning {
		return
	}
	last := r.Started
	for _, p := range []string{s.dir(r.ID), filepath.Join(s.dir(r.ID), "record.json"), filepath.Join(s.dir(r.ID), "logs.jsonl")} {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(last) {
			last = st.ModTime()
		}
	}
	r.Status = StatusKilled
	r.Ended = last.UTC()
	r.Duration = last.Sub(r.Started).Seconds()
	if r.Error == "" {
		r.Error = fmt.Sprintf("interrupted: its process (pid %d) ended without finishing the run", r.PID)
	}
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
	s.cleanNew()
	var out []*Record
	for _, id := range ids {
		r, err := s.read(id)
		if err != nil {
			r = nil
		}
		if r = s.cleanRun(id, r); r != nil {
			out = append(out, r)
		}
	}
	listed := map[string]*Record{}
	for _, r := range out {
		listed[r.ID] = r
	}
	s.cleanCodeTmp(listed)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, nil
}

// Delete removes a run's record, logs and code (the code itself when no
// other run shares it).
func (s *Store) Delete(id string) error {
	full, err := s.resolve(id)
	if err != nil {
		if !validID(id) || !dirExists(s.dir(id)) {
			return err
		}
		full = id // a folder without a record
	}
	code := s.CodeDir(full)
	if err := removeTree(s.dir(full)); err != nil {
		return err
	}
	if filepath.Dir(code) == s.codeRoot() {
		return s.releaseCode(filepath.Base(code))
	}
	return nil
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// DefaultLogLimit is the size a run's log may reach (logs.jsonl, in
// bytes); lines past it are counted and dropped.
const DefaultLogLimit = 100_000_000 // 100 MB

// EnvLogLimit sets the limit of every run's log ("500MB", "1GB"); the CLI
// reads it.
const EnvLogLimit = "LAKEHOUSE_RUN_LOG_LIMIT"

// Logs appends log lines of a run, up to a size limit. It is safe for
// concurrent use.
type Logs struct {
	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	limit int64 // bytes; < 0: none
	size  int64 // bytes in the file
	// dropped and droppedBytes count the lines past the limit.
	dropped, droppedBytes int64
}

// OpenLogs opens a run's log for appending, limited to DefaultLogLimit.
func (s *Store) OpenLogs(id string) (*Logs, error) {
	f, err := os.OpenFile(filepath.Join(s.dir(id), "logs.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	l := &Logs{f: f, w: bufio.NewWriterSize(f, 64<<10), limit: DefaultLogLimit}
	if st, err := f.Stat(); err == nil {
		l.size = st.Size()
	}
	return l, nil
}

// SetLimit changes the log's size limit in bytes: 0 means
// DefaultLogLimit, below 0 none.
func (l *Logs) SetLimit(limit int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if limit == 0 {
		limit = DefaultLogLimit
	}
	l.limit = limit
}

// Write appends one line; it is on disk for readers at the next Flush
// (which Write does for every line of a function: lines are few). A line
// that would take the log past its limit is counted and dropped (Close
// writes one line saying how many). It reports whether the line was kept.
func (l *Logs) Write(line LogLine) bool {
	b, _ := json.Marshal(line)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return false
	}
	if l.limit >= 0 && (l.dropped > 0 || l.size+int64(len(b))+1 > l.limit) {
		l.dropped++
		l.droppedBytes += int64(len(line.Text)) + 1
		return false
	}
	l.write(b)
	return true
}

func (l *Logs) write(b []byte) {
	l.w.Write(b)
	l.w.WriteByte('\n')
	l.w.Flush()
	l.size += int64(len(b)) + 1
}

// Dropped is the number of lines dropped past the limit so far.
func (l *Logs) Dropped() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// Close writes the line about dropped lines, if any, then flushes and
// closes the log.
func (l *Logs) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return nil
	}
	if l.dropped > 0 {
		b, _ := json.Marshal(LogLine{Time: time.Now().UTC(), Stream: "lakehouse",
			Text: fmt.Sprintf("log limit of %s reached: %d further line%s (%s) dropped; %s sets the limit",
				formatSize(l.limit), l.dropped, plural(l.dropped), formatSize(l.droppedBytes), EnvLogLimit)})
		l.write(b)
	}
	err := l.w.Flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.w = nil
	return err
}

// formatSize renders a byte count in decimal units, as sizes are given:
// "100 MB", "3.2 MB", "512 KB", "90 B".
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		size float64
	}{{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if float64(n) >= u.size {
			s := strconv.FormatFloat(float64(n)/u.size, 'f', 1, 64)
			return strings.TrimSuffix(s, ".0") + " " + u.name
		}
	}
	return fmt.Sprintf("%d B", n)
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ReadLogs calls fn for each log line of a run (id or prefix), in order.
func (s *Store) ReadLogs(id string, fn func(LogLine) error) error {
	full, err := s.resolve(id)
	if err != nil {
		return err
	}
	_, err = s.ReadLogsFrom(full, 0, fn)
	return err
}

// ReadLogsFrom calls fn for each whole log line of run id (a full id)
// from byte offset on, and returns the offset after the last whole line:
// a reader following a running run calls it again from there. A line
// still being written is left for the next call.
func (s *Store) ReadLogsFrom(id string, offset int64, fn func(LogLine) error) (int64, error) {
	f, err := os.Open(filepath.Join(s.dir(id), "logs.jsonl"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return offset, nil
		}
		return offset, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return offset, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		b, err := r.ReadBytes('\n')
		if err != nil {
			// EOF: a partial line (or none) waits for the next call.
			return offset, nil
		}
		offset += int64(len(b))
		var l LogLine
		if json.Unmarshal(b, &l) != nil {
			continue // a line cut by a crash
		}
		if err := fn(l); err != nil {
			return offset, err
		}
	}
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
