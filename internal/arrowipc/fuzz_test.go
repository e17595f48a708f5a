package arrowipc

import (
	"os"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/arrowipc/ipctest"
)

// FuzzOpen reads arbitrary small Arrow IPC files (model outputs, files
// `table import` reads) as every reader does (readAll): each reads, or
// fails with an error of a class other than Internal, and never panics or
// crashes the process. A read takes well under a millisecond, but the
// fuzzer's default minute of minimizing each new input looks like a
// stall; run it as
//
//	go test ./internal/arrowipc -run '^$' -fuzz FuzzOpen -fuzztime 3m -fuzzminimizetime 20x
func FuzzOpen(f *testing.F) {
	ipctest.AddSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		dir, err := os.MkdirTemp("", "fuzzopen")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		if err := checkRead(dir, data); err != nil {
			t.Fatal(err)
		}
	})
}
