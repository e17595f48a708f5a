package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog/scancache"
	"github.com/lakehouse-dev/lakehouse/catalog/scancache/scancachetest"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
)

// TestCacheLsClear: `cache ls` lists what a scan cached, `cache clear`
// removes it; both work (and create nothing) before the cache exists.
func TestCacheLsClear(t *testing.T) {
	dataDir, objDir := t.TempDir(), t.TempDir()
	vars := map[string]string{envDataDir: dataDir, envUser: "tester", "HOME": dataDir}
	lh := func(args ...string) (string, string, int) {
		var o, e bytes.Buffer
		env := &Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Getenv: func(k string) string { return vars[k] }}
		code := run(context.Background(), append([]string{"lakehouse"}, args...), env)
		return o.String(), e.String(), code
	}
	out, errOut, code := lh("cache", "ls")
	if code != 0 || !strings.Contains(out, "0 files, 0 B cached") {
		t.Fatalf("empty ls: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "cache")); !os.IsNotExist(err) {
		t.Fatalf("ls created the cache: %v", err)
	}

	db, err := duckdb.Open(duckdb.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Exec("COPY (SELECT range AS a, range::VARCHAR AS b FROM range(100000)) TO " +
		duckdb.Literal(filepath.Join(objDir, "f1.parquet")) + " (FORMAT parquet)")
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := scancache.Open(filepath.Join(dataDir, "cache", "scan"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Materialize(context.Background(), scancachetest.DirStore{Dir: objDir}, "f1.parquet", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	out, errOut, code = lh("cache", "ls")
	if code != 0 || !strings.Contains(out, "f1.parquet") || !strings.Contains(out, "1 file,") {
		t.Fatalf("ls: exit %d\n%s%s", code, out, errOut)
	}
	var entries []scancache.Entry
	out, _, code = lh("cache", "ls", "-O", "json")
	mustJSON(t, out, &entries)
	if code != 0 || len(entries) != 1 || entries[0].Key != "f1.parquet" || entries[0].Cached <= 0 || entries[0].Cached >= entries[0].Size {
		t.Fatalf("ls -O json: exit %d %+v", code, entries)
	}
	out, errOut, code = lh("cache", "clear")
	if code != 0 || !strings.Contains(out, "removed 1 file,") {
		t.Fatalf("clear: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = lh("cache", "ls", "-O", "json")
	mustJSON(t, out, &entries)
	if code != 0 || len(entries) != 0 {
		t.Fatalf("ls after clear: exit %d %+v", code, entries)
	}
	if _, errOut, code = lh("cache", "ls", "extra"); code != 2 {
		t.Fatalf("ls with an argument: exit %d, want 2\n%s", code, errOut)
	}
}
