package bolt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/storetest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// holdEnv makes the test binary, re-executed as a child, open the store file
// it names, print "locked" and hold the file until its stdin closes.
const holdEnv = "LAKEHOUSE_BOLT_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(holdLock(path))
	}
	os.Exit(m.Run())
}

func holdLock(path string) int {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func tempPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "catalog.db")
}

func openT(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) catalog.Store {
		// NoSync: the suite checks semantics, and every file is thrown away.
		return openT(t, tempPath(t), Options{NoSync: true})
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	c := &catalog.Commit{Height: 1, Tree: catalog.NewTree().ComputeID(), Author: "alice", Message: "init",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Properties: map[string]string{catalog.PropOperation: "init"}}
	c.ID = c.ComputeID()

	s := openT(t, path, Options{})
	if err := s.Update(t.Context(), func(tx catalog.Tx) error {
		for _, err := range []error{
			tx.PutTree(c.Tree, catalog.NewTree()),
			tx.PutCommit(c),
			tx.PutRef(catalog.KindBranch, "main", c.ID),
			tx.PutRef(catalog.KindTag, "v1", c.ID),
			tx.PutRecord("run", "r1", []byte("data")),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, path, Options{})
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	if err := s.View(t.Context(), func(tx catalog.Tx) error {
		for _, kind := range []catalog.RefKind{catalog.KindBranch, catalog.KindTag} {
			refs, err := tx.ListRefs(kind)
			if err != nil || len(refs) != 1 || refs[0].Commit != c.ID {
				t.Errorf("ListRefs(%s) = %v, %v", kind, refs, err)
			}
		}
		got, err := tx.GetCommit(c.ID)
		if err != nil || got.ComputeID() != c.ID || !got.Time.Equal(c.Time) {
			t.Errorf("GetCommit = %+v, %v", got, err)
		}
		if _, err := tx.GetTree(c.Tree); err != nil {
			t.Errorf("GetTree: %v", err)
		}
		if v, err := tx.GetRecord("run", "r1"); err != nil || string(v) != "data" {
			t.Errorf("GetRecord = %q, %v", v, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// wantUnavailable checks the error a second opener of a locked file gets.
func wantUnavailable(t *testing.T, err error, start time.Time, timeout time.Duration) {
	t.Helper()
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Open of a locked file: %v, want an error wrapping ErrUnavailable", err)
	}
	for _, want := range []string{"in use by another lakehouse process", "--data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if d := time.Since(start); d < timeout/2 {
		t.Errorf("Open gave up after %s; the timeout is %s", d, timeout)
	}
}

// TestLockedInProcess opens the file twice in one process. flock locks
// belong to an open file description, so the second Open, which opens the
// file again, conflicts with the first as another process would.
func TestLockedInProcess(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	first := openT(t, path, Options{})
	const timeout = 200 * time.Millisecond
	start := time.Now()
	_, err := Open(path, Options{Timeout: timeout})
	wantUnavailable(t, err, start, timeout)
	_, err = Open(path, Options{Timeout: timeout, ReadOnly: true})
	wantUnavailable(t, err, start, timeout)

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openT(t, path, Options{Timeout: timeout})
}

// TestLockedByAnotherProcess runs the test binary as a child that holds the
// file, as a second lakehouse process would.
func TestLockedByAnotherProcess(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("child said %q, %v", line, err)
	}

	const timeout = 300 * time.Millisecond
	start := time.Now()
	_, err = Open(path, Options{Timeout: timeout})
	wantUnavailable(t, err, start, timeout)

	// Once the child exits the file opens.
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	openT(t, path, Options{Timeout: timeout})
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := openT(t, path, Options{})
	if err := s.Update(t.Context(), func(tx catalog.Tx) error { return tx.PutRecord("run", "r", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Read-only opens share the lock.
	r1 := openT(t, path, Options{ReadOnly: true})
	r2 := openT(t, path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	for _, r := range []*Store{r1, r2} {
		if err := r.View(t.Context(), func(tx catalog.Tx) error {
			v, err := tx.GetRecord("run", "r")
			if err == nil && string(v) != "v" {
				err = fmt.Errorf("got %q", v)
			}
			return err
		}); err != nil {
			t.Errorf("View of a read-only store: %v", err)
		}
	}
	err := r1.Update(t.Context(), func(tx catalog.Tx) error { return nil })
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Update of a read-only store: %v, want ErrFailedPrecondition", err)
	}

	_, err = Open(filepath.Join(t.TempDir(), "missing.db"), Options{ReadOnly: true})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("read-only Open of a missing file: %v, want ErrNotFound", err)
	}
}

// rawUpdate changes a closed store file with bbolt directly.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewerFormatVersion(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := openT(t, path, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte("99"))
	})
	for _, opts := range []Options{{}, {ReadOnly: true}} {
		_, err := Open(path, opts)
		if !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Fatalf("Open(%+v) of a version 99 file: %v, want ErrFailedPrecondition", opts, err)
		}
		for _, want := range []string{"version 99", fmt.Sprintf("up to %d", currentVersion), "upgrade lakehouse"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	}
}

func TestMigrationSetsVersion(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := openT(t, path, Options{})
	if err := s.db.View(func(tx *bolt.Tx) error {
		v, err := readVersion(path, tx)
		if err == nil && v != currentVersion {
			err = fmt.Errorf("version %d, want %d", v, currentVersion)
		}
		for _, name := range [][]byte{bucketBranches, bucketTags, bucketCommits, bucketTrees, bucketRecords} {
			if tx.Bucket(name) == nil {
				err = errors.Join(err, fmt.Errorf("bucket %s missing", name))
			}
		}
		return err
	}); err != nil {
		t.Error(err)
	}
}

func TestNotACatalogFile(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	foreign := tempPath(t)
	rawUpdate(t, foreign, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("widgets"))
		return err
	})
	tests := []struct {
		name    string
		content []byte // nil: use the file at path as it is
		path    string
		want    string
	}{
		{"random bytes", random(64 << 10), "", "not a bbolt file"},
		{"short random bytes", random(100), "", "not a bbolt file"},
		{"text", []byte("hello\n"), "", "too short"},
		{"empty", []byte{}, "", "it is empty"},
		{"another bbolt file", nil, foreign, `has a "widgets" bucket`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tc.path
			if tc.content != nil {
				path = tempPath(t)
				if err := os.WriteFile(path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Open(path, Options{Timeout: time.Second})
			if !errors.Is(err, errdefs.ErrDataLoss) {
				t.Fatalf("Open: %v, want ErrDataLoss", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) ||
				!strings.Contains(err.Error(), "is damaged") {
				t.Errorf("error %q does not say %q and name the file", err, tc.want)
			}
		})
	}
}

func TestCorruptValue(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := openT(t, path, Options{})
	id := strings.Repeat("ab", 32)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketCommits).Put([]byte(id), []byte("{not json")); err != nil {
			return err
		}
		return tx.Bucket(bucketTrees).Put([]byte(id), []byte(`{"tables":{"no dot":{}}}`))
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		get  func(tx catalog.Tx) error
		key  string
	}{
		{"commit", func(tx catalog.Tx) error { _, err := tx.GetCommit(catalog.CommitID(id)); return err }, "commits/" + id},
		{"tree", func(tx catalog.Tx) error { _, err := tx.GetTree(catalog.TreeID(id)); return err }, "trees/" + id},
	}
	for _, tc := range tests {
		err := s.View(context.Background(), tc.get)
		if !errors.Is(err, errdefs.ErrDataLoss) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: got %v, want ErrDataLoss naming %s", tc.name, err, tc.key)
		}
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	if err := (Options{Timeout: -time.Second}).Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Validate of a negative timeout: %v", err)
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("Validate of the zero Options: %v", err)
	}
	if got := (Options{}).withDefaults().Timeout; got != DefaultTimeout {
		t.Errorf("default timeout %s, want %s", got, DefaultTimeout)
	}
	if _, err := Open(tempPath(t), Options{Timeout: -1}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Open with invalid options: %v", err)
	}
	if _, err := Open("", Options{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Open of an empty path: %v", err)
	}
}
