package scancache

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzMaterialize: any object bytes give an entry or an error, never a
// panic, and a failed object leaves nothing in the cache.
func FuzzMaterialize(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "seed.parquet")
	writeArrowParquet(f, good, 50, 20, 1)
	b, err := os.ReadFile(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[len(b)-200:])
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &dirSource{dir: t.TempDir()}
		if err := os.WriteFile(filepath.Join(src.dir, "obj"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		c := openCache(t, 0)
		local, _, err := c.Materialize(context.Background(), src, "obj", []string{"id", "s"})
		if err != nil {
			if files := entryFiles(t, c); len(files) != 0 {
				t.Fatalf("%v, and left %v", err, files)
			}
			return
		}
		c.Release(local)
	})
}
