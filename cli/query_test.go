package cli

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestCreateBesideHonoursUmask: --out files get 0666 less the umask, as
// os.Create gives, not os.CreateTemp's 0600.
func TestCreateBesideHonoursUmask(t *testing.T) {
	for _, umask := range []int{0o022, 0o002, 0o077} {
		old := syscall.Umask(umask)
		f, err := createBeside(filepath.Join(t.TempDir(), "out.csv"))
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		st, err := os.Stat(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.Mode().Perm(), os.FileMode(0o666&^umask); got != want {
			t.Errorf("umask %04o: mode %04o, want %04o", umask, got, want)
		}
	}
}
