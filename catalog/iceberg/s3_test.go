package iceberg

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
)

// stoppingStorage stops the MinIO behind it when the nth object is
// created (0: never) and counts creates.
type stoppingStorage struct {
	warehouse.Storage
	srv     *miniotest.Server
	mu      sync.Mutex
	n, stop int
}

func (s *stoppingStorage) Create(ctx context.Context, key string) (warehouse.Writer, error) {
	s.mu.Lock()
	s.n++
	if s.n == s.stop {
		s.srv.Stop()
	}
	s.mu.Unlock()
	return s.Storage.Create(ctx, key)
}

func s3Storage(t *testing.T, srv *miniotest.Server, prefix string) warehouse.Storage {
	t.Helper()
	st, err := warehouse.Open(context.Background(), warehouse.Config{URI: "s3://" + srv.Bucket + "/" + prefix,
		S3: warehouse.S3Options{Endpoint: srv.Endpoint, MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func csvRows(t *testing.T, dir, name string, from, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("id,usd,country\n")
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "%d,%d.5,%s\n", i, i%13, []string{"IT", "FR", "DE"}[i%3])
	}
	return writeFile(t, dir, name, b.String())
}

// TestS3ImportScan: imports into a table on S3 and scans it: the plan's
// files are local copies in the cache directory.
func TestS3ImportScan(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	cache := t.TempDir()
	f, err := New(Options{Storage: s3Storage(t, srv, "scan"), CacheDir: cache, BatchRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, err := f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Sources: []string{csvRows(t, dir, "a.csv", 0, 500)}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.Entry.MetadataLocation, "s3://"+srv.Bucket+"/scan/sales/transactions-") {
		t.Fatalf("metadata location %s", out.Entry.MetadataLocation)
	}
	cur := out.Entry
	out, err = f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Current: &cur, Sources: []string{csvRows(t, dir, "b.csv", 500, 250)}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.OpenScan(ctx, salesIdent, out.Entry)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := s.PlanFiles(ctx, catalog.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Records != 750 || len(plan.Files) != 2 {
		t.Fatalf("plan: %d records in %d files", plan.Records, len(plan.Files))
	}
	for _, p := range plan.Files {
		if !strings.HasPrefix(p, cache) {
			t.Errorf("planned file %s is not in the cache %s", p, cache)
		}
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	info, err := f.Describe(ctx, salesIdent, cur)
	if err != nil || info.RowCount != 500 {
		t.Fatalf("time travel to the first state: %+v %v", info, err)
	}
}

// TestS3StoppedMidImport stops MinIO at each object an import writes: the
// import fails as unavailable and returns no table state; with MinIO back,
// the same import succeeds.
func TestS3StoppedMidImport(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	src := csvRows(t, t.TempDir(), "a.csv", 0, 1000)
	probe := &stoppingStorage{Storage: s3Storage(t, srv, "probe"), srv: srv}
	f, err := New(Options{Storage: probe, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Sources: []string{src}}); err != nil {
		t.Fatal(err)
	}
	creates := probe.n
	if creates < 3 {
		t.Fatalf("an import created only %d objects", creates)
	}
	for stop := 1; stop <= creates; stop++ {
		t.Run(fmt.Sprintf("stop-at-%d", stop), func(t *testing.T) {
			st := &stoppingStorage{Storage: s3Storage(t, srv, fmt.Sprintf("stop%d", stop)), srv: srv, stop: stop}
			f, err := New(Options{Storage: st, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Sources: []string{src}})
			srv.Restart()
			if !errdefs.Is(err, errdefs.ErrUnavailable) || out != nil {
				t.Fatalf("import with MinIO stopped at object %d: %v (outcome %v), want unavailable", stop, err, out)
			}
			st.stop = 0
			out, err = f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Sources: []string{src}})
			if err != nil {
				t.Fatalf("import after restart: %v", err)
			}
			if info, err := f.Describe(ctx, salesIdent, out.Entry); err != nil || info.RowCount != 1000 {
				t.Fatalf("after restart: %+v %v", info, err)
			}
		})
	}
}

// TestImportS3Sources imports an object and a prefix of objects; an
// append of the same objects again skips them.
func TestImportS3Sources(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	src := s3Storage(t, srv, "src")
	dir := t.TempDir()
	for i, name := range []string{"a.csv", "b.csv", "_SUCCESS", "sub/c.csv"} {
		w, err := src.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(csvRows(t, dir, "x.csv", i*100, 100))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	f, err := New(Options{Warehouse: t.TempDir(), OpenSource: func(ctx context.Context, loc warehouse.Location) (warehouse.Storage, error) {
		return warehouse.NewS3(ctx, loc, warehouse.S3Options{Endpoint: srv.Endpoint})
	}})
	if err != nil {
		t.Fatal(err)
	}
	bucket := "s3://" + srv.Bucket
	out, err := f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Sources: []string{bucket + "/src/a.csv"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Rows != 100 || len(out.Imported) != 1 || out.Imported[0] != bucket+"/src/a.csv" {
		t.Fatalf("object import: %+v", out)
	}
	cur := out.Entry
	out, err = f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Current: &cur, Sources: []string{bucket + "/src/"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Rows != 200 || len(out.Skipped) != 1 || len(out.Imported) != 2 {
		t.Fatalf("prefix import: imported %v skipped %v rows %d", out.Imported, out.Skipped, out.Rows)
	}
	for _, bad := range []struct {
		src   string
		class error
	}{
		{bucket + "/src/*.csv", errdefs.ErrInvalidArgument},
		{bucket + "/nothing/", errdefs.ErrNotFound},
		{bucket + "/src/_SUCCESS", errdefs.ErrInvalidArgument},
	} {
		if _, err := f.Import(ctx, catalog.ImportSpec{Ident: salesIdent, Sources: []string{bad.src}}); !errdefs.Is(err, bad.class) {
			t.Errorf("import %s: %v, want %v", bad.src, err, bad.class)
		}
	}
}
