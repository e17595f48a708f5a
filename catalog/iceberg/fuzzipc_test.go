package iceberg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// importIPCBytes imports data as an Arrow IPC file into a new warehouse
// under dir and fails t unless the import succeeds or fails with a
// classified error.
func importIPCBytes(t testing.TB, dir string, data []byte) {
	if err := checkIPCImport(dir, data); err != nil {
		t.Fatal(err)
	}
}

// checkIPCImport imports data as an Arrow IPC file into a new warehouse
// under dir; the import must succeed, releasing all it allocated, or fail
// with a classified error.
func checkIPCImport(dir string, data []byte) error {
	src := filepath.Join(dir, "in.arrow")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return err
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	format, err := New(Options{Warehouse: filepath.Join(dir, "wh"), Allocator: mem})
	if err != nil {
		return err
	}
	out, err := format.Import(context.Background(), catalog.ImportSpec{Ident: salesIdent, Sources: []string{src}})
	if err != nil {
		// arrow-go's reader leaks (to the garbage collector) what it
		// allocated before it panicked on a corrupt buffer, so only an
		// import that succeeds must have released everything.
		if errdefs.Class(err) == errdefs.ErrInternal {
			return fmt.Errorf("unclassed error for %q: %w", data, err)
		}
		return nil
	}
	if out.Entry.MetadataLocation == "" {
		return fmt.Errorf("outcome %+v", out)
	}
	if _, err := format.Describe(context.Background(), salesIdent, out.Entry); err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	if n := mem.CurrentAlloc(); n != 0 {
		return fmt.Errorf("%d bytes still allocated after importing %q", n, data)
	}
	return nil
}

// FuzzIPCImport imports arbitrary small Arrow IPC files (the format of
// pipeline outputs, and of `table import x.arrow`): Import returns a table
// state or an error of a class other than Internal, and never panics.
// An import takes milliseconds, so the fuzzer's default minute of
// minimizing each new input looks like a stall; run it as
//
//	go test ./catalog/iceberg -run '^$' -fuzz FuzzIPCImport -fuzztime 3m -fuzzminimizetime 20x
func FuzzIPCImport(f *testing.F) {
	ipctest.AddSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		dir, err := os.MkdirTemp("", "fuzzipc")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		importIPCBytes(t, dir, data)
	})
}
