package warehouse_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/internal/miniotest"
)

// backends returns every Storage implementation, each fresh.
func backends(t *testing.T) map[string]func(t *testing.T) warehouse.Storage {
	srv := miniotest.Start(t)
	n := 0
	return map[string]func(t *testing.T) warehouse.Storage{
		"local": func(t *testing.T) warehouse.Storage {
			s, err := warehouse.Open(context.Background(), warehouse.Config{URI: "file://" + t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"s3": func(t *testing.T) warehouse.Storage {
			n++
			s, err := warehouse.Open(context.Background(), warehouse.Config{
				URI: "s3://" + srv.Bucket + "/wh" + strings.Repeat("x", n),
				S3:  warehouse.S3Options{Endpoint: srv.Endpoint, PartSize: 5 << 20}})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

func put(t *testing.T, s warehouse.Storage, key string, data []byte) {
	t.Helper()
	w, err := s.Create(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, s warehouse.Storage, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.ReadRange(context.Background(), key, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keys(t *testing.T, s warehouse.Storage, prefix string) []string {
	t.Helper()
	var out []string
	if err := s.List(context.Background(), prefix, func(o warehouse.ObjectInfo) error {
		out = append(out, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStorageConformance(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("WriteReadStat", func(t *testing.T) {
				s := open(t)
				put(t, s, "ns/t/data/a.parquet", []byte("hello world"))
				size, etag, err := s.Stat(ctx, "ns/t/data/a.parquet")
				if err != nil || size != 11 || etag == "" {
					t.Fatalf("stat: %d %q %v", size, etag, err)
				}
				if got := read(t, s, "ns/t/data/a.parquet", 6, 5); string(got) != "world" {
					t.Fatalf("range: %q", got)
				}
				if got := read(t, s, "ns/t/data/a.parquet", 2, -1); string(got) != "llo world" {
					t.Fatalf("tail: %q", got)
				}
				if got := read(t, s, "ns/t/data/a.parquet", 0, 0); len(got) != 0 {
					t.Fatalf("empty range: %q", got)
				}
			})
			t.Run("WriteOnce", func(t *testing.T) {
				s := open(t)
				put(t, s, "k", []byte("one"))
				w, err := s.Create(ctx, "k")
				if err == nil {
					w.Write([]byte("two"))
					err = w.Close()
				}
				if !errdefs.Is(err, errdefs.ErrAlreadyExists) {
					t.Fatalf("second create: %v, want AlreadyExists", err)
				}
				if got := read(t, s, "k", 0, -1); string(got) != "one" {
					t.Fatalf("object changed: %q", got)
				}
			})
			t.Run("AbortLeavesNothing", func(t *testing.T) {
				s := open(t)
				w, err := s.Create(ctx, "a/b")
				if err != nil {
					t.Fatal(err)
				}
				w.Write(bytes.Repeat([]byte("x"), 6<<20)) // past one part on S3
				if err := w.Abort(); err != nil {
					t.Fatal(err)
				}
				if k := keys(t, s, ""); len(k) != 0 {
					t.Fatalf("aborted write is visible: %v", k)
				}
				if _, _, err := s.Stat(ctx, "a/b"); !errdefs.Is(err, errdefs.ErrNotFound) {
					t.Fatalf("stat: %v, want NotFound", err)
				}
			})
			t.Run("Multipart", func(t *testing.T) {
				s := open(t)
				data := bytes.Repeat([]byte("0123456789abcdef"), (11<<20)/16+7)
				w, err := s.Create(ctx, "big")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.(io.ReaderFrom).ReadFrom(bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if got := read(t, s, "big", 0, -1); !bytes.Equal(got, data) {
					t.Fatalf("read back %d bytes, want %d", len(got), len(data))
				}
			})
			t.Run("ListDelete", func(t *testing.T) {
				s := open(t)
				for _, k := range []string{"b/2", "a/1", "a/0", "ab"} {
					put(t, s, k, []byte(k))
				}
				if got := strings.Join(keys(t, s, ""), ","); got != "a/0,a/1,ab,b/2" {
					t.Fatalf("list: %s", got)
				}
				if got := strings.Join(keys(t, s, "a/"), ","); got != "a/0,a/1" {
					t.Fatalf("list a/: %s", got)
				}
				if err := s.Delete(ctx, "a/0"); err != nil {
					t.Fatal(err)
				}
				if err := s.Delete(ctx, "a/0"); err != nil {
					t.Fatalf("deleting a missing object: %v", err)
				}
				if got := strings.Join(keys(t, s, "a"), ","); got != "a/1,ab" {
					t.Fatalf("list a after delete: %s", got)
				}
			})
			t.Run("NotFound", func(t *testing.T) {
				s := open(t)
				if _, err := s.ReadRange(ctx, "nope", 0, -1); !errdefs.Is(err, errdefs.ErrNotFound) {
					t.Fatalf("read: %v", err)
				}
			})
			t.Run("Keys", func(t *testing.T) {
				s := open(t)
				u := s.URI("ns/t/x.avro")
				if k, ok := s.Key(u); !ok || k != "ns/t/x.avro" {
					t.Fatalf("Key(%s) = %q %v", u, k, ok)
				}
				for _, bad := range []string{"s3://other/x", "/elsewhere/x", s.URI("../x")} {
					if k, ok := s.Key(bad); ok {
						t.Fatalf("Key(%s) = %q, want outside", bad, k)
					}
				}
				if _, err := s.Create(ctx, "../escape"); !errdefs.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("create ../escape: %v", err)
				}
			})
			t.Run("Download", func(t *testing.T) {
				s := open(t)
				put(t, s, "d/f.parquet", []byte("content"))
				d := &warehouse.Downloader{Storage: s, Dir: t.TempDir()}
				p, err := d.Materialize(ctx, "d/f.parquet", nil)
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := os.ReadFile(p); string(b) != "content" {
					t.Fatalf("materialized %q", b)
				}
			})
		})
	}
}

func TestS3Unavailable(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	s, err := warehouse.Open(ctx, warehouse.Config{URI: "s3://" + srv.Bucket + "/p", S3: warehouse.S3Options{Endpoint: srv.Endpoint, MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", []byte("v"))
	srv.Stop()
	if _, _, err := s.Stat(ctx, "k"); !errdefs.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("stat with MinIO stopped: %v, want Unavailable", err)
	}
	srv.Restart()
	if got := read(t, s, "k", 0, -1); string(got) != "v" {
		t.Fatalf("after restart: %q", got)
	}
}

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/a/b/", "file:///a/b"},
		{"file:///a/b", "file:///a/b"},
		{"s3://bkt", "s3://bkt"},
		{"s3://bkt/p/q/", "s3://bkt/p/q"},
		{"http://x/y", ""},
		{"file://host/a", ""},
		{"relative/dir", ""},
		{"s3:///p", ""},
		{"/a b", ""},
	} {
		loc, err := warehouse.ParseLocation(tc.in)
		if tc.want == "" {
			if !errdefs.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s: %v %v, want InvalidArgument", tc.in, loc, err)
			}
			continue
		}
		if err != nil || loc.String() != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.in, loc, err, tc.want)
		}
	}
}

func TestLocalMovedRoot(t *testing.T) {
	dir := t.TempDir()
	s, err := warehouse.NewLocal(filepath.Join(dir, "new"), "/old/warehouse")
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := s.Key("/old/warehouse/ns/t/m.json"); !ok || k != "ns/t/m.json" {
		t.Fatalf("old location: %q %v", k, ok)
	}
	if u := s.URI("ns/x"); u != "/old/warehouse/ns/x" {
		t.Fatalf("URI = %s", u)
	}
	if p := s.LocalPath("ns/x"); p != filepath.Join(dir, "new", "ns", "x") {
		t.Fatalf("LocalPath = %s", p)
	}
}

// TestS3AbortUploads: the multipart upload a killed writer left is listed
// by a dry run and aborted by a real one; a newer one is left alone.
func TestS3AbortUploads(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	st, err := warehouse.Open(ctx, warehouse.Config{URI: "s3://" + srv.Bucket + "/p", S3: warehouse.S3Options{Endpoint: srv.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*warehouse.S3)
	key := "p/ns/t/data/orphan.parquet"
	if _, err := srv.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &srv.Bucket, Key: &key}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AbortUploads(ctx, time.Now().Add(-time.Hour), false); err != nil || len(got) != 0 {
		t.Fatalf("uploads begun in the last hour: %v, %v; want none", got, err)
	}
	for _, dry := range []bool{true, false} {
		got, err := s.AbortUploads(ctx, time.Now().Add(time.Minute), dry)
		if err != nil || len(got) != 1 || got[0] != "ns/t/data/orphan.parquet" {
			t.Fatalf("dry run %v: %v, %v", dry, got, err)
		}
	}
	if got, err := s.AbortUploads(ctx, time.Now().Add(time.Minute), true); err != nil || len(got) != 0 {
		t.Fatalf("after the abort: %v, %v; want none", got, err)
	}
}
