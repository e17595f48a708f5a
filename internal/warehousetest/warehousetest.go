// Package warehousetest gives a test suite the warehouse of its mode: a
// local one, or with LAKEHOUSE_TEST_WAREHOUSE=s3 (a step of
// scripts/test.sh) one on S3, a prefix of a MinIO from internal/miniotest;
// and it reads back the objects that table metadata names, on either.
package warehousetest

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
)

// S3 is the S3 mode: LAKEHOUSE_TEST_WAREHOUSE=s3.
var S3 = os.Getenv("LAKEHOUSE_TEST_WAREHOUSE") == "s3"

var (
	prefixes atomic.Int64
	// open holds the warehouses of OnS3 by root until their test ends.
	open sync.Map
)

// Main runs a package's tests (TestMain's m) and exits with their code.
// In the S3 mode it first starts one MinIO for the whole test binary and
// sets *srv to it, for OnS3's prefixes (one MinIO a test cost the S3 step
// of scripts/test.sh about 25 s of CPU); it stops it by PID at the end.
func Main(m *testing.M, srv **miniotest.Server) {
	if !S3 {
		os.Exit(m.Run())
	}
	s, err := miniotest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "LAKEHOUSE_TEST_WAREHOUSE=s3:", err)
		os.Exit(1)
	}
	*srv = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// OnS3 returns a warehouse under a prefix of srv's bucket that no other
// test of the process uses. Holding finds it until t ends.
func OnS3(t testing.TB, srv *miniotest.Server) warehouse.Storage {
	t.Helper()
	st, err := warehouse.Open(context.Background(), warehouse.Config{
		URI: fmt.Sprintf("s3://%s/wh%d", srv.Bucket, prefixes.Add(1)),
		S3:  warehouse.S3Options{Endpoint: srv.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	open.Store(st.Root(), st)
	t.Cleanup(func() { open.Delete(st.Root()) })
	return st
}

// Holding returns the warehouse of OnS3 that holds loc, an s3://
// location.
func Holding(loc string) (st warehouse.Storage, ok bool) {
	open.Range(func(_, v any) bool {
		if _, in := v.(warehouse.Storage).Key(loc); in {
			st, ok = v.(warehouse.Storage), true
		}
		return !ok
	})
	return st, ok
}

// Read reads the object at loc, a location table metadata records: a
// local file, or an object of a warehouse of OnS3.
func Read(t testing.TB, loc string) []byte {
	t.Helper()
	if !strings.HasPrefix(loc, "s3://") {
		b, err := os.ReadFile(loc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	st, ok := Holding(loc)
	if !ok {
		t.Fatalf("%s is in no test warehouse", loc)
	}
	key, _ := st.Key(loc)
	r, err := st.ReadRange(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatalf("%s: %v", loc, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", loc, err)
	}
	return b
}

// CheckLocalOnly fails t unless every name of localOnly (a package's
// table of the tests that keep a local warehouse in the S3 mode, with
// why) is a test, fuzz target or benchmark of the package in the current
// directory: the table stays true as tests are renamed.
func CheckLocalOnly(t testing.TB, localOnly map[string]string) {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]bool{}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
				funcs[fn.Name.Name] = true
			}
		}
	}
	for name, why := range localOnly {
		switch {
		case !funcs[name] || !(strings.HasPrefix(name, "Test") || strings.HasPrefix(name, "Fuzz") || strings.HasPrefix(name, "Benchmark")):
			t.Errorf("the local-only table lists %s, which is not a test of the package", name)
		case why == "":
			t.Errorf("the local-only table gives no reason for %s", name)
		}
	}
}
