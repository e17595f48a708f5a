package iceberg

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func TestExpandSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"d/b.csv", "d/a.parquet", "d/sub/c.CSV", "d/_SUCCESS", "d/.a.parquet.crc",
		"d/_tmp/x.csv", "d/notes.txt", "g/1.csv", "g/2.csv", "g/_SUCCESS", "star*.csv"} {
		writeFile(t, dir, name, "x")
	}
	tests := []struct {
		name    string
		sources []string
		want    []string
		wantErr string
		class   error
	}{
		{name: "directory, recursive and sorted", sources: []string{"d"}, want: []string{"d/a.parquet", "d/b.csv", "d/sub/c.CSV"}},
		{name: "glob skips markers", sources: []string{"g/*"}, want: []string{"g/1.csv", "g/2.csv"}},
		{name: "duplicates once, in order", sources: []string{"g/2.csv", "g", "g/1.csv"}, want: []string{"g/2.csv", "g/1.csv"}},
		{name: "file named like a glob", sources: []string{"star*.csv"}, want: []string{"star*.csv"}},
		{name: "glob of directories", sources: []string{"[dg]"}, want: []string{"d/a.parquet", "d/b.csv", "d/sub/c.CSV", "g/1.csv", "g/2.csv"}},
		{name: "unsupported file", sources: []string{"d/notes.txt"}, class: errdefs.ErrInvalidArgument,
			wantErr: `file %DIR%/d/notes.txt: unsupported file format ".txt"; import reads .parquet, .csv and Arrow IPC (.arrow, .feather, .ipc) files`},
		{name: "only markers", sources: []string{"g/_*"}, class: errdefs.ErrNotFound, wantErr: `source "%DIR%/g/_*" matches no files`},
		{name: "bad pattern", sources: []string{"g/[*"}, class: errdefs.ErrInvalidArgument, wantErr: `source "%DIR%/g/[*" is not a valid glob pattern: syntax error in pattern`},
		{name: "empty", sources: []string{""}, class: errdefs.ErrInvalidArgument, wantErr: "an import source is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sources []string
			for _, s := range tc.sources {
				if s != "" {
					s = filepath.Join(dir, s)
				}
				sources = append(sources, s)
			}
			got, err := expandSources(sources)
			if tc.wantErr != "" {
				want := strings.ReplaceAll(tc.wantErr, "%DIR%", dir)
				if err == nil || err.Error() != want || !errdefs.Is(err, tc.class) {
					t.Fatalf("error = %v, want %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, s := range got {
				rel, _ := filepath.Rel(dir, s.Path)
				paths = append(paths, rel)
				if s.Size != 1 || s.MtimeNs == 0 {
					t.Errorf("%s: size %d mtime %d", rel, s.Size, s.MtimeNs)
				}
			}
			eqStrings(t, "files", paths, tc.want)
		})
	}
}
