package envcache

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type member struct {
	name string
	body string
	exec bool
}

var streamMembers = []member{
	{"pkg/", "", false},
	{"pkg/__init__.py", "from .sub import mod\n", false},
	{"pkg/sub/mod.py", strings.Repeat("x = 1\n", 5000), false},
	{"pkg/_native.so", strings.Repeat("\x7fELF", 3000), true},
	{"pkg/empty.txt", "", false},
	{"demo-1.0.data/scripts/tool", "#!/bin/sh\necho hi\n", true},
	{"demo-1.0.data/purelib/extra.py", "y = 2\n", false},
	{"demo-1.0.data/headers/demo.h", "int x;\n", false},
	{"demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n", false},
	{"demo-1.0.dist-info/RECORD", "", false},
}

// buildWheel zips members: with sizes in the local headers (as Python's
// zipfile writes wheels) when raw, else with data descriptors (as Go's
// zip.Writer does).
func buildWheel(t *testing.T, members []member, raw bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, m := range members {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		if i%3 == 2 || strings.HasSuffix(m.name, "/") {
			h.Method = zip.Store
		}
		mode := os.FileMode(0o644)
		if m.exec {
			mode = 0o755
		}
		h.SetMode(mode)
		if !raw {
			w, err := zw.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(m.body))
			continue
		}
		data := []byte(m.body)
		if h.Method == zip.Deflate {
			var c bytes.Buffer
			fw, _ := flate.NewWriter(&c, flate.DefaultCompression)
			fw.Write(data)
			fw.Close()
			data = c.Bytes()
		}
		h.CRC32 = crc32.ChecksumIEEE([]byte(m.body))
		h.CompressedSize64, h.UncompressedSize64 = uint64(len(data)), uint64(len(m.body))
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// serveSlowly serves body in small chunks with pauses, so the unpacking
// catches up with the download; a non-negative length is announced
// instead of the real one.
func serveSlowly(t *testing.T, body []byte, length int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if length < 0 {
			length = len(body)
		}
		w.Header().Set("Content-Length", strconv.Itoa(length))
		for i := 0; i < len(body); i += 4096 {
			w.Write(body[i:min(i+4096, len(body))])
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/demo-1.0-py3-none-any.whl"
}

// tree reads a folder as path -> mode and content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, _ := e.Info()
		rel, _ := filepath.Rel(dir, p)
		b := []byte{}
		if !e.IsDir() {
			b, _ = os.ReadFile(p)
		}
		out[rel] = fmt.Sprintf("%v %x", info.Mode(), sha256.Sum256(b))
		return nil
	})
	return out
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A wheel unpacked while it downloads is the folder unpackZip makes of
// the complete file, whatever the zip's form; a hash or a size that is
// not the announced one fails the install.
func TestStreamWheel(t *testing.T) {
	var log bytes.Buffer
	c := openTestCache(t, Config{Dir: t.TempDir(), Resolver: "pip",
		Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := context.Background()
	want := func(t *testing.T, body []byte) map[string]string {
		zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "root")
		if err := unpackZip(zr, "demo", dir); err != nil {
			t.Fatal(err)
		}
		return tree(t, dir)
	}
	// The local header of pkg/sub/mod.py names another file than the
	// central directory does.
	lying := buildWheel(t, streamMembers, true)
	lying = bytes.Replace(lying, []byte("pkg/sub/mod.py"), []byte("pkg/sub/evil.p"), 1)
	for name, body := range map[string][]byte{
		"local headers":    buildWheel(t, streamMembers, true),
		"data descriptors": buildWheel(t, streamMembers, false),
		"lying header":     lying,
	} {
		t.Run(name, func(t *testing.T) {
			log.Reset()
			root := filepath.Join(t.TempDir(), "root")
			d := Distribution{Name: "demo", Version: "1.0", URL: serveSlowly(t, body, -1), SHA256: shaOf(body)}
			data, _, err := c.streamWheel(ctx, d, root)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, body) {
				t.Fatal("returned bytes differ from the file")
			}
			got, exp := tree(t, root), want(t, body)
			for k, v := range exp {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q", k, got[k], v)
				}
			}
			for k := range got {
				if _, ok := exp[k]; !ok {
					t.Errorf("%s unpacked, not in the wheel's central directory", k)
				}
			}
			streamed := !strings.Contains(log.String(), "unpacking after the download")
			if streamed != (name == "local headers") {
				t.Errorf("unpacked while downloading: %v\n%s", streamed, log.String())
			}
			if st, err := os.Stat(filepath.Join(root, "bin", "tool")); err != nil || st.Mode().Perm()&0o111 == 0 {
				t.Errorf("script not executable: %v %v", st, err)
			}
		})
	}
	body := buildWheel(t, streamMembers, true)
	for name, tc := range map[string]struct {
		sha    string
		length int
		want   string
	}{
		"wrong hash": {strings.Repeat("0", 64), -1, "does not match the index's"},
		"truncated":  {shaOf(body), len(body) + 10, "unexpected EOF"},
	} {
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			d := Distribution{Name: "demo", Version: "1.0", URL: serveSlowly(t, body, tc.length), SHA256: tc.sha}
			if _, _, err := c.streamWheel(ctx, d, root); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
