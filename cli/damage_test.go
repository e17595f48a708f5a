package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
)

// damageEnv is a data directory with history: two branches, a tag, a
// namespace and a table with a data file.
func damageEnv(t *testing.T) (dataDir string, lh func(args ...string) (string, string, int)) {
	t.Helper()
	dataDir = t.TempDir()
	env := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	lh = func(args ...string) (string, string, int) {
		var o, e bytes.Buffer
		en := &Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Getenv: func(k string) string { return env[k] }}
		code := run(context.Background(), append([]string{"lakehouse"}, args...), en)
		return o.String(), e.String(), code
	}
	testdata, _ := filepath.Abs(filepath.Join("..", "testdata"))
	for _, args := range [][]string{
		{"checkout", "-b", "tester.dev"},
		{"namespace", "create", "sales"},
		{"table", "import", "sales.transactions", "--from", filepath.Join(testdata, "sample", "transactions")},
		{"tag", "create", "v1"},
		{"table", "import", "sales.more", "--from", filepath.Join(testdata, "sample", "transactions_more")},
	} {
		if out, errOut, code := lh(args...); code != 0 {
			t.Fatalf("lakehouse %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	return dataDir, lh
}

// lhProcess runs the test binary as the lakehouse command (see TestMain):
// a real process, so a SIGBUS or a runtime crash shows as one.
func lhProcess(t *testing.T, dataDir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(cliBinary(), args...)
	cmd.Env = append(os.Environ(), envTestAsCLI+"=1", envDataDir+"="+dataDir, envUser+"=tester", "HOME="+dataDir,
		envLockTimeout+"=10s")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A command that hangs is as wrong as one that crashes: stop it with
	// SIGQUIT, so its goroutine dump says where.
	timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Signal(syscall.SIGQUIT) })
	err := cmd.Wait()
	if !timer.Stop() {
		t.Errorf("lakehouse %s hung:\n%s", strings.Join(args, " "), e.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Errorf("lakehouse %s was killed by %s:\n%s", strings.Join(args, " "), ws.Signal(), e.String())
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// crashed reports whether a process's stderr shows a Go crash.
func crashed(stderr string) bool {
	for _, s := range []string{"panic:", "fatal error:", "goroutine ", "SIGBUS", "SIGSEGV"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// usedBytes is the end of the last page the catalog file's meta pages use
// (bbolt's high-water mark): the file may be longer, never shorter.
func usedBytes(t *testing.T, b []byte) int {
	t.Helper()
	const pageHeader, hwmOffset = 16, 40
	pageSize := int(binary.NativeEndian.Uint32(b[pageHeader+8:]))
	hwm0 := binary.NativeEndian.Uint64(b[pageHeader+hwmOffset:])
	hwm1 := binary.NativeEndian.Uint64(b[pageSize+pageHeader+hwmOffset:])
	return int(max(hwm0, hwm1)) * pageSize
}

// TestCatalogDamageCorpus runs real processes against damaged copies of a
// catalog file with history. A file cut short, emptied or overwritten must
// give the damaged-file error and exit 1 for every command, with no crash
// and no goroutine dump, and must not be replaced. A flipped byte that
// bbolt cannot see at open may go unnoticed by a command, but none may
// crash, and when one fails, doctor must report the damage.
func TestCatalogDamageCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts many processes")
	}
	dataDir, _ := damageEnv(t)
	good, err := os.ReadFile(filepath.Join(dataDir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	used := usedBytes(t, good)
	rng := rand.New(rand.NewPCG(12, 3))
	type variant struct {
		name    string
		data    []byte
		damaged bool // every command must fail with the damaged-file error
	}
	variants := []variant{{"0 bytes", []byte{}, true}, {"100 bytes", good[:100], true}}
	for n := 1; n < len(good); n *= 2 {
		variants = append(variants, variant{fmt.Sprintf("cut to %d bytes", n), good[:n], n < used})
	}
	random := make([]byte, len(good))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	variants = append(variants, variant{"random bytes", random, true})
	const pageSize = 4096
	for i := range 16 {
		b := bytes.Clone(good)
		off := 2*pageSize + rng.IntN(used-2*pageSize)
		if i%2 == 0 { // a page header or the element table after it
			off = (2+rng.IntN(used/pageSize-2))*pageSize + rng.IntN(64)
		}
		b[off] ^= byte(1 + rng.IntN(255))
		variants = append(variants, variant{fmt.Sprintf("byte %d flipped", off), b, false})
	}
	commands := [][]string{{"branch", "ls"}, {"log", "v1"}, {"table", "ls"}, {"doctor"}}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			// Each variant is a catalog file in a folder of its own, read
			// by processes of its own: they run side by side.
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "catalog.db")
			if err := os.WriteFile(path, v.data, 0o600); err != nil {
				t.Fatal(err)
			}
			failed := false
			for _, args := range commands {
				out, errOut, code := lhProcess(t, dir, args...)
				if crashed(errOut) {
					t.Fatalf("lakehouse %s crashed (exit %d):\n%s", strings.Join(args, " "), code, errOut)
				}
				if v.damaged {
					if code != 1 || !strings.Contains(out+errOut, "is damaged: restore it from a backup") {
						t.Errorf("lakehouse %s: exit %d, stderr %q; want exit 1 and the damaged-file error",
							strings.Join(args, " "), code, errOut)
					}
					continue
				}
				if args[0] == "doctor" {
					if failed && code != 1 {
						t.Errorf("a command failed, but doctor exits %d:\n%s%s", code, out, errOut)
					}
					if code != 0 && code != 1 {
						t.Errorf("doctor exits %d: %s", code, errOut)
					}
					continue
				}
				if code != 0 {
					failed = true
					t.Logf("lakehouse %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(errOut))
				}
			}
			if after, _ := os.ReadFile(path); v.damaged && !bytes.Equal(after, v.data) {
				t.Errorf("the damaged catalog file was changed (%d bytes, was %d)", len(after), len(v.data))
			}
		})
	}
}

// TestBackupWhileWriting backs up the catalog while another process keeps
// committing to it. Every backup is a whole catalog whose branches are the
// ones created so far, and the last, taken when the writer is done, has
// exactly the refs of the live catalog.
func TestBackupWhileWriting(t *testing.T) {
	dataDir, lh := damageEnv(t)
	backups := t.TempDir()
	const writes = 15
	var wg sync.WaitGroup
	wg.Add(1)
	writerErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := range writes {
			if _, errOut, code := lhProcess(t, dataDir, "branch", "create", fmt.Sprintf("tester.b%02d", i)); code != 0 {
				writerErr <- fmt.Errorf("branch create: exit %d: %s", code, errOut)
				return
			}
		}
	}()
	var files []string
	for i := 0; ; i++ {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		f := filepath.Join(backups, fmt.Sprintf("b%03d.db", i))
		if out, errOut, code := lh("backup", f); code != 0 {
			t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
		}
		files = append(files, f)
		select {
		case <-done:
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	select {
	case err := <-writerErr:
		t.Fatal(err)
	default:
	}
	t.Logf("%d backups taken while another process committed", len(files))
	final := filepath.Join(backups, "final.db")
	if out, errOut, code := lh("backup", final, "-O", "json"); code != 0 || !strings.Contains(out, `"bytes"`) {
		t.Fatalf("backup -O json: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := lh("backup", final); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("backup over an existing file: exit %d, %s", code, errOut)
	}
	if _, errOut, code := lh("backup", final, "--force"); code != 0 {
		t.Errorf("backup --force: exit %d, %s", code, errOut)
	}
	for _, f := range files {
		refs := storeRefs(t, f)
		for i := range writes {
			name := fmt.Sprintf("tester.b%02d", i)
			if i > 0 && strings.Contains(refs, name) && !strings.Contains(refs, fmt.Sprintf("tester.b%02d", i-1)) {
				t.Errorf("%s has %s but not the branch before it:\n%s", f, name, refs)
			}
		}
	}
	if got, want := storeRefs(t, final), storeRefs(t, filepath.Join(dataDir, "catalog.db")); got != want {
		t.Errorf("the final backup's refs differ from the catalog's:\n%s\nwant:\n%s", got, want)
	}
	if t.Failed() {
		return
	}
	// A backup is a catalog: put it in place of a damaged file and it works.
	if err := os.WriteFile(filepath.Join(dataDir, "catalog.db"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(final)
	if err := os.WriteFile(filepath.Join(dataDir, "catalog.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := lh("doctor"); code != 0 {
		t.Errorf("doctor on the restored backup: exit %d\n%s%s", code, out, errOut)
	}
}

// storeRefs lists the branches and tags of a catalog file, one per line.
func storeRefs(t *testing.T, path string) string {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer s.Close()
	var b strings.Builder
	err = s.View(context.Background(), func(tx catalog.Tx) error {
		for _, kind := range []catalog.RefKind{catalog.KindBranch, catalog.KindTag} {
			refs, err := tx.ListRefs(kind)
			if err != nil {
				return err
			}
			for _, r := range refs {
				fmt.Fprintf(&b, "%s %s %s\n", kind, r.Name, r.Commit)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDoctor: a sound catalog passes; a deleted data file, a truncated
// manifest and a deleted metadata file are each reported, exit 1.
func TestDoctor(t *testing.T) {
	dataDir, lh := damageEnv(t)
	if out, errOut, code := lh("doctor"); code != 0 || !strings.HasPrefix(out, "ok: 2 branches, 1 tag,") {
		t.Fatalf("doctor on a sound catalog: exit %d\n%s%s", code, out, errOut)
	}
	find := func(pattern string) string {
		t.Helper()
		m, _ := filepath.Glob(filepath.Join(dataDir, "warehouse", "sales", "transactions-*", pattern))
		if len(m) == 0 {
			t.Fatalf("no %s in the warehouse", pattern)
		}
		return m[0]
	}
	tests := []struct {
		name   string
		file   string
		damage func(path string) error
		want   string
	}{
		{"data file deleted", find("data/*.parquet"), os.Remove, "is missing"},
		{"data file truncated", find("data/*.parquet"), func(p string) error { return os.Truncate(p, 10) }, "is 10 bytes, but its manifest records"},
		{"manifest truncated", find("metadata/*-m*.avro"), func(p string) error { return os.Truncate(p, 100) }, "reading manifest"},
		{"metadata deleted", find("metadata/*.metadata.json"), os.Remove, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			saved, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(tc.file, saved, 0o644)
			if err := tc.damage(tc.file); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := lh("doctor")
			if code != 1 || !strings.Contains(out, tc.want) || !strings.Contains(out, "sales.transactions") ||
				!strings.Contains(errOut, "doctor found") {
				t.Errorf("exit %d, want 1 and a report saying %q\n%s%s", code, tc.want, out, errOut)
			}
			out, _, _ = lh("doctor", "-O", "json")
			if !strings.Contains(out, `"ok": false`) || !strings.Contains(out, tc.want) {
				t.Errorf("doctor -O json:\n%s", out)
			}
		})
	}
	if out, errOut, code := lh("doctor"); code != 0 {
		t.Fatalf("doctor after restoring the files: exit %d\n%s%s", code, out, errOut)
	}
}

// TestCheckoutCreateAllOrNothing: when the profile cannot be written,
// checkout -b leaves no branch behind and the active branch as it was.
func TestCheckoutCreateAllOrNothing(t *testing.T) {
	dataDir, lh := damageEnv(t)
	branches := func() string {
		out, _, _ := lh("branch", "ls", "-O", "json")
		return out
	}
	before := branches()

	// The profile file cannot be read or replaced: nothing is created.
	profiles := filepath.Join(dataDir, "profiles.json")
	saved, err := os.ReadFile(profiles)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(profiles); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(profiles, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := lh("checkout", "-b", "tester.new"); code == 0 {
		t.Errorf("checkout -b with an unusable profile file succeeded: %s", errOut)
	}
	os.Remove(profiles)
	if err := os.WriteFile(profiles, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := branches(); got != before {
		t.Errorf("a failed checkout -b changed the branches:\n%s", got)
	}

	// Writing the profile fails after the branch was made (a full disk
	// at the last step): the branch is removed again.
	renameFile = func(string, string) error { return errors.New("no space left on device") }
	_, errOut, code := lh("checkout", "-b", "tester.new")
	renameFile = os.Rename
	if code == 0 || !strings.Contains(errOut, "no space left") {
		t.Errorf("checkout -b with a failing profile write: exit %d, %s", code, errOut)
	}
	if got := branches(); got != before {
		t.Errorf("a failed checkout -b left a branch behind:\n%s", got)
	}
	if out, _, _ := lh("config", "get", "active_branch"); strings.TrimSpace(out) != "tester.dev" {
		t.Errorf("active branch after a failed checkout -b: %q", out)
	}
	if m, _ := filepath.Glob(filepath.Join(dataDir, ".profiles.json.*")); len(m) != 0 {
		t.Errorf("staged profile files left behind: %v", m)
	}

	// The same for renaming the active branch.
	renameFile = func(string, string) error { return errors.New("no space left on device") }
	_, _, code = lh("branch", "rename", "tester.dev", "tester.renamed")
	renameFile = os.Rename
	if code == 0 {
		t.Error("renaming the active branch with a failing profile write succeeded")
	}
	if got := branches(); got != before {
		t.Errorf("a failed rename of the active branch changed the branches:\n%s", got)
	}

	if _, errOut, code := lh("checkout", "-b", "tester.new"); code != 0 {
		t.Errorf("checkout -b: exit %d, %s", code, errOut)
	}
}
