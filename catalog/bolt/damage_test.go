package bolt

import (
	"bytes"
	stdctx "context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// sampleFile writes a store with enough records to span many pages and
// returns its bytes.
func sampleFile(t *testing.T) []byte {
	t.Helper()
	path := tempPath(t)
	s := openT(t, path, Options{NoSync: true})
	for i := range 200 {
		if err := s.Update(t.Context(), func(tx catalog.Tx) error {
			return tx.PutRecord("run", fmt.Sprintf("r%04d", i), bytes.Repeat([]byte{byte(i)}, 100+i*10))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// usedBytes is the end of the last page either meta page of a store file
// uses.
func usedBytes(t *testing.T, b []byte) int {
	t.Helper()
	m0, why := decodeMeta(b, 0)
	if why != "" {
		t.Fatal(why)
	}
	m1, why := decodeMeta(b[m0.pageSize:], 1)
	if why != "" {
		t.Fatal(why)
	}
	return int(max(m0.hwm, m1.hwm) * m0.pageSize)
}

// readAll opens path and reads every record and checks the file, as doctor
// does. It returns the first error; it must never panic or crash.
func readAll(path string) error {
	s, err := Open(path, Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return err
	}
	defer s.Close()
	err = s.View(stdctx.Background(), func(tx catalog.Tx) error {
		return tx.ListRecords("run", "", func(string, []byte) error { return nil })
	})
	if err != nil {
		return err
	}
	problems, err := s.Check(stdctx.Background())
	if err != nil {
		return err
	}
	return errors.Join(problems...)
}

// TestDamagedFiles opens damaged copies of a real store file: each must
// give an ErrDataLoss error naming the file (or, for a flipped byte bbolt
// cannot see at open, an error from Check or none), never a panic or a
// crash, and never be replaced by an empty catalog.
func TestDamagedFiles(t *testing.T) {
	t.Parallel()
	good := sampleFile(t)
	rng := rand.New(rand.NewPCG(7, 11))
	type variant struct {
		name string
		data []byte
		// open: Open itself must refuse the file.
		open bool
	}
	variants := []variant{
		{"empty", nil, true},
		{"100 bytes", good[:100], true},
	}
	// bbolt grows the file ahead of its pages: cutting the unused tail
	// loses nothing and must still open.
	used := usedBytes(t, good)
	for n := 1; n < len(good); n *= 2 {
		variants = append(variants, variant{fmt.Sprintf("truncated to %d", n), good[:n], n < used})
	}
	random := make([]byte, len(good))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	variants = append(variants, variant{"random bytes", random, true})
	for _, off := range []int{16, 20, 24, 40, 56, 64, 72, 4096 + 20, 4096 + 64} {
		b := bytes.Clone(good)
		b[off] ^= 0x40
		variants = append(variants, variant{fmt.Sprintf("meta byte %d flipped", off), b, true})
	}
	pageSize := 4096
	for i := range 60 {
		b := bytes.Clone(good)
		// Used pages only; half the flips hit a page header or the
		// element table after it, where bbolt finds its way.
		page := 2 + rng.IntN(used/pageSize-2)
		within := rng.IntN(pageSize)
		if i%2 == 0 {
			within = rng.IntN(64)
		}
		off := page*pageSize + within
		b[off] ^= byte(1 + rng.IntN(255))
		variants = append(variants, variant{fmt.Sprintf("flip %d at %d", i, off), b, false})
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			path := tempPath(t)
			if err := os.WriteFile(path, v.data, 0o600); err != nil {
				t.Fatal(err)
			}
			err := readAll(path)
			if !v.open && strings.HasPrefix(v.name, "truncated") && err != nil {
				t.Fatalf("a file cut after its last page: %v", err)
			}
			if v.open || err != nil {
				if !errdefs.Is(err, errdefs.ErrDataLoss) && !errdefs.Is(err, errdefs.ErrNotFound) {
					t.Fatalf("got %v, want an ErrDataLoss error", err)
				}
			}
			if errdefs.Is(err, errdefs.ErrDataLoss) && !strings.Contains(err.Error(), "damaged") {
				t.Errorf("error %q does not say the file is damaged", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, v.data) && v.open {
				t.Errorf("the damaged file was changed (%d bytes, was %d)", len(after), len(v.data))
			}
		})
	}
}

// TestCreateOnlyWhereMissing: Open creates a file only where there is none,
// and the new file is whole (never left empty under its name).
func TestCreateOnlyWhereMissing(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	openT(t, path, Options{NoSync: true}).Close()
	if err := checkFile(path, time.Second); err != nil {
		t.Fatalf("a new store does not check out: %v", err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errdefs.Is(err, errdefs.ErrDataLoss) {
		t.Fatalf("Open of an emptied file: %v, want ErrDataLoss", err)
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Errorf("Open wrote to the emptied file (%d bytes)", st.Size())
	}
	if exitCode := errdefs.ExitCode(errdefs.New(errdefs.ErrDataLoss, "x")); exitCode != errdefs.ExitFailed {
		t.Errorf("ErrDataLoss exits %d, want %d", exitCode, errdefs.ExitFailed)
	}
}

// TestSharedDamageSticks: once a transaction finds the file damaged, later
// ones fail the same way instead of trying the file again.
func TestSharedDamageSticks(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	sh := openSharedT(t, path, Options{NoSync: true})
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		err := sh.View(t.Context(), func(catalog.Tx) error { return nil })
		if !errdefs.Is(err, errdefs.ErrDataLoss) {
			t.Fatalf("View of a damaged file: %v, want ErrDataLoss", err)
		}
	}
}

// TestBackupEitherTxid: a backup checks out whatever the parity of the
// transaction it copies. bbolt's Tx.WriteTo puts the transaction on meta
// page 0 and the one before it on page 1, unlike a live file, where a
// transaction's meta page is its id modulo 2.
func TestBackupEitherTxid(t *testing.T) {
	t.Parallel()
	s := openT(t, tempPath(t), Options{NoSync: true})
	dir := t.TempDir()
	for i := range 3 {
		if err := s.Update(t.Context(), func(tx catalog.Tx) error {
			return tx.PutRecord("run", fmt.Sprintf("r%d", i), []byte("x"))
		}); err != nil {
			t.Fatal(err)
		}
		path := fmt.Sprintf("%s/b%d.db", dir, i)
		if _, err := BackupFile(t.Context(), s, path, false); err != nil {
			t.Fatalf("backup after %d commits: %v", i+1, err)
		}
		if err := readAll(path); err != nil {
			t.Fatalf("backup after %d commits: %v", i+1, err)
		}
	}
}
