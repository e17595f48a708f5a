package duckdb

import (
	"context"
	"os"
	"testing"
)

// TestSpillUnderSandbox: a query larger than the memory limit spills to the
// DB's own temp directory (not ./.tmp), with the sandbox on, and Close
// removes it.
func TestSpillUnderSandbox(t *testing.T) {
	db, err := Open(Options{MemoryLimit: "64MB", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	tmp := db.tmp
	if err := db.Lock("main", nil); err != nil {
		t.Fatal(err)
	}
	r, err := db.Query(context.Background(),
		"SELECT i, md5(i::VARCHAR) AS h FROM range(3000000) t(i) ORDER BY h")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r.Next() {
		n += int(r.RecordBatch().NumRows())
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	r.Release()
	if n != 3000000 {
		t.Fatalf("%d rows", n)
	}
	if _, err := os.Stat(".tmp"); err == nil {
		t.Error("DuckDB spilled into ./.tmp")
	}
	db.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("spill directory %s left behind: %v", tmp, err)
	}
}
