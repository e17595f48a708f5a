package catalog_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/bolt"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/killpoints"
)

// The crash test runs imports and merges in a child process, kills it with
// SIGKILL at random moments, and after each kill checks that the store
// opens, every ref points to a complete commit, and every table shows whole
// imports only (each source file holds crashRowsPerFile rows, so a table's
// row count must be a multiple of it and match its data files).

const (
	crashChildEnv    = "LAKEHOUSE_CRASH_CHILD"
	crashWorkersEnv  = "LAKEHOUSE_CRASH_WORKERS"
	crashRowsPerFile = 100
	crashSources     = 400
)

func TestCrashSafety(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	points := crashPoints // 200, fewer under -race (see crash_race_test.go)
	// The points run in parallel workers, each on a store of its own: two
	// on a machine with two cores or more (the test mostly waits for its
	// children), one under -race.
	workers := 1
	if crashSlowdown == 1 && runtime.NumCPU() >= 2 {
		workers = 2
	}
	killpoints.Run(t, points, killpoints.EnvCount(t, crashWorkersEnv, workers), crashWorker)
}

// crashWorker kills the child at points random moments, on a store of its
// own.
func crashWorker(t *testing.T, points int) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range crashSources {
		var b strings.Builder
		b.WriteString("id,amount,country\n")
		for r := range crashRowsPerFile {
			fmt.Fprintf(&b, "%d,%d.5,%s\n", i*crashRowsPerFile+r, r, []string{"IT", "FR", "DE"}[r%3])
		}
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%03d.csv", i)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d kill points", seed, points)
	rng := rand.New(rand.NewPCG(seed, 1))
	commits := 0
	for k := range points {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("LAKEHOUSE_CRASH_SEED=%d", seed+uint64(k)))
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// One kill in five lands anywhere from the start (opening the store,
		// creating branches); the others while imports and merges run.
		if rng.IntN(5) > 0 {
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(out.String(), "READY") && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		time.Sleep(time.Duration(rng.IntN(200*crashSlowdown)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if strings.Contains(out.String(), "CHILD-ERROR") {
			t.Fatalf("kill point %d (seed %d): the workload failed before the kill:\n%s", k, seed, out.String())
		}
		commits += strings.Count(out.String(), "COMMIT ")
		if err := verifyStore(dir); err != nil {
			t.Fatalf("kill point %d (seed %d): %v\nchild output:\n%s", k, seed, err, out.String())
		}
	}
	t.Logf("%d commits by children across %d kills", commits, points)
	if commits == 0 {
		t.Fatal("the children never committed: kills came too early to test anything")
	}
}

func openCrashService(dir string) (*catalog.Local, error) { return openService(dir, nil) }

// openService opens the catalog in dir over the warehouse st (nil: a local
// one in dir/warehouse).
func openService(dir string, st warehouse.Storage) (*catalog.Local, error) {
	svc, _, err := openCatalog(dir, st)
	return svc, err
}

// openCatalog is openService that also returns the catalog's format.
func openCatalog(dir string, st warehouse.Storage) (*catalog.Local, *iceberg.Format, error) {
	store, err := bolt.Open(filepath.Join(dir, "catalog.db"), bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	format, err := iceberg.New(iceberg.Options{Warehouse: filepath.Join(dir, "warehouse"), Storage: st, CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	svc, err := catalog.NewLocal(context.Background(), store, format, catalog.LocalOptions{Author: "crash"})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return svc, format, nil
}

// crashChild imports and merges until killed.
func crashChild(dir string) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Println("CHILD-ERROR", err)
		os.Exit(1)
	}
	svc, err := openCrashService(dir)
	if err != nil {
		fail(err)
	}
	var seed uint64
	fmt.Sscan(os.Getenv("LAKEHOUSE_CRASH_SEED"), &seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	branches := []catalog.BranchName{"crash.a", "crash.b"}
	for _, b := range branches {
		if _, err := svc.CreateBranch(ctx, b, catalog.Ref{Name: "main"}); err != nil && !errdefs.Is(err, errdefs.ErrAlreadyExists) {
			fail(err)
		}
	}
	fmt.Println("READY")
	for {
		b := branches[rng.IntN(2)]
		switch x := rng.IntN(10); {
		case x < 7:
			file := filepath.Join(dir, "src", fmt.Sprintf("f%03d.csv", rng.IntN(crashSources)))
			table := catalog.TableIdent{Namespace: catalog.DefaultNamespace, Name: fmt.Sprintf("t%d", rng.IntN(3))}
			res, err := svc.ImportTable(ctx, catalog.ImportRequest{Branch: b, Table: table, Sources: []string{file}})
			if err != nil {
				fail(err)
			}
			if res.Commit != nil {
				fmt.Println("COMMIT import", res.Commit.ID.Short())
			}
		default:
			into := branches[0]
			if b == into {
				into = branches[1]
			}
			if rng.IntN(3) == 0 {
				into = catalog.MainBranch
			}
			res, err := svc.Merge(ctx, catalog.MergeRequest{Source: catalog.Ref{Name: string(b)}, Into: into})
			if err != nil && !errdefs.Is(err, errdefs.ErrConflict) {
				fail(err)
			}
			if err == nil && res.Commit != nil {
				fmt.Println("COMMIT merge", res.Outcome, res.Commit.ID.Short())
			}
		}
	}
}

// verifyStore opens the store left by a killed child and checks every ref
// and every table reachable from it.
func verifyStore(dir string) error {
	ctx := context.Background()
	if _, err := os.Stat(filepath.Join(dir, "catalog.db")); os.IsNotExist(err) {
		return nil // killed before it created anything
	}
	svc, err := openCrashService(dir)
	if err != nil {
		return fmt.Errorf("store does not open after a crash: %w", err)
	}
	defer svc.Close()
	branches, err := svc.ListBranches(ctx)
	if err != nil {
		return err
	}
	checked := map[string]bool{}
	for _, b := range branches {
		log, err := svc.Log(ctx, catalog.Ref{Name: string(b.Name)}, 0)
		if err != nil {
			return fmt.Errorf("history of %s: %w", b.Name, err)
		}
		for _, c := range log[:min(len(log), 3)] {
			ref := catalog.Ref{Commit: string(c.ID)}
			tables, err := svc.ListTables(ctx, ref, "")
			if err != nil {
				return fmt.Errorf("tables of %s at %s: %w", b.Name, c.ID.Short(), err)
			}
			for _, tb := range tables {
				if checked[tb.Metadata] {
					continue
				}
				checked[tb.Metadata] = true
				info, err := svc.GetTable(ctx, ref, tb.Ident)
				if err != nil {
					return fmt.Errorf("table %s on %s: %w", tb.Ident, b.Name, err)
				}
				var rows int64
				for _, f := range info.Files {
					st, err := os.Stat(strings.TrimPrefix(f.Path, "file://"))
					if err != nil {
						return fmt.Errorf("table %s on %s: data file: %w", tb.Ident, b.Name, err)
					}
					if st.Size() != f.Bytes {
						return fmt.Errorf("table %s on %s: data file %s has %d bytes, metadata says %d", tb.Ident, b.Name, f.Path, st.Size(), f.Bytes)
					}
					rows += f.Records
				}
				if rows != info.RowCount || rows%crashRowsPerFile != 0 {
					return fmt.Errorf("table %s on %s: %d rows in files, %d in the snapshot: a partial import is visible", tb.Ident, b.Name, rows, info.RowCount)
				}
			}
		}
	}
	return nil
}

// lockedBuffer collects a child's output while the parent reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
