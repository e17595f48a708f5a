package iceberg

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// TestDirObjects: keys are '/'-separated paths under the root; a prefix
// narrows the listing; deleting a missing file is no error; a key that
// leaves the root is refused.
func TestDirObjects(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for _, k := range []string{"a/t-1/data/x.parquet", "a/t-1/metadata/00001.metadata.json", "a/t-10/data/y.parquet", "b/u/data/z.parquet"} {
		writeFile(t, root, filepath.FromSlash(k), "12345")
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "a", "link")); err != nil {
		t.Fatal(err)
	}
	d := &DirObjects{Root: root}
	list := func(prefix string) []string {
		t.Helper()
		var keys []string
		err := d.List(ctx, prefix, func(o catalog.ObjectInfo) error {
			if o.Size != 5 || o.ModTime.IsZero() || o.ETag == "" {
				t.Errorf("%s: %+v", o.Key, o)
			}
			keys = append(keys, o.Key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a/t-1/data/x.parquet", "a/t-1/metadata/00001.metadata.json", "a/t-10/data/y.parquet", "b/u/data/z.parquet"}},
		{"a/t-1/", []string{"a/t-1/data/x.parquet", "a/t-1/metadata/00001.metadata.json"}},
		{"a/t-1", []string{"a/t-1/data/x.parquet", "a/t-1/metadata/00001.metadata.json", "a/t-10/data/y.parquet"}},
		{"b/u/data/z", []string{"b/u/data/z.parquet"}},
		{"c", nil},
	} {
		if got := list(tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %v, want %v", tc.prefix, got, tc.want)
		}
	}
	if err := d.Delete(ctx, "a/t-1/data/x.parquet"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "a/t-1/data/x.parquet"); err != nil {
		t.Fatalf("deleting a missing file: %v", err)
	}
	for _, bad := range []string{"", "../x", "a/../../x", "/etc/passwd", "a//b"} {
		if err := d.Delete(ctx, bad); !errdefs.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Delete(%q) = %v, want invalid argument", bad, err)
		}
	}
	if got := list("a/t-1/"); !slices.Equal(got, []string{"a/t-1/metadata/00001.metadata.json"}) {
		t.Fatalf("after delete: %v", got)
	}
	if err := (&DirObjects{Root: filepath.Join(root, "none")}).List(ctx, "", func(catalog.ObjectInfo) error { return nil }); err != nil {
		t.Fatalf("listing a warehouse not created yet: %v", err)
	}
}
