package repodir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoot(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "repodir", "repodir.go")); err != nil {
		t.Errorf("Root() = %s, which does not hold this package: %v", root, err)
	}
	if p := Path("testdata/functions/funcs.py"); p != filepath.Join(root, "testdata", "functions", "funcs.py") {
		t.Errorf("Path = %s", p)
	}

	// Outside the repository (a go.mod of another module on the way up
	// does not count), Root says where it looked.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if _, err := Root(); err == nil || !strings.Contains(err.Error(), "run from inside the repository") {
		t.Errorf("Root() outside the repository: %v", err)
	}
}
