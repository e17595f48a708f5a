package iceberg

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// FuzzCSVImport imports arbitrary small CSV files: Import returns a table
// state or an error of a class other than Internal, and never panics.
func FuzzCSVImport(f *testing.F) {
	for _, s := range []string{
		salesCSV,
		"a\n1\n",
		"a,b\n1,\n,2\n",
		"a,b\n\"x,y\",2\n",
		"a,b\n\"x\ny\",2\n",
		"a\n\"unterminated\n",
		"a,b\n1\n",
		"",
		"\n\n",
		"\ufeffa\n1\n",
		"a,a\n1,2\n",
		"ts\n2024-01-01T00:00:00Z\n2024-01-01\n",
		"n\n9223372036854775808\n",
		"x\nNaN\ninf\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		fuzzImport(t, "in.csv", data)
	})
}

// fuzzImport imports data as the file name into a new warehouse: the
// import must return a table state that describes cleanly, or an error
// of a class other than Internal.
func fuzzImport(t *testing.T, name string, data []byte) {
	// Not t.TempDir: seed names ("seed#3") put a '#' in its path, which
	// a warehouse may not contain.
	dir, err := os.MkdirTemp("", "fuzzimport")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, name)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	format, err := New(Options{Warehouse: filepath.Join(dir, "wh")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := format.Import(context.Background(), catalog.ImportSpec{Ident: salesIdent, Sources: []string{src}})
	if err != nil {
		if errdefs.Class(err) == errdefs.ErrInternal {
			t.Fatalf("unclassed error for %q: %v", data, err)
		}
		return
	}
	if out.Entry.MetadataLocation == "" || out.Rows < 1 {
		t.Fatalf("outcome %+v", out)
	}
	if _, err := format.Describe(context.Background(), salesIdent, out.Entry); err != nil {
		t.Fatalf("describe: %v", err)
	}
}
