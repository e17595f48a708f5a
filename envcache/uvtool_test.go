package envcache

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// fakeUVIndex is a simple index serving one uv wheel for this machine,
// whose "binary" is a shell script answering --version.
type fakeUVIndex struct {
	srv       *httptest.Server
	wheel     []byte
	sha       string // announced by the index
	downloads atomic.Int64
}

func newFakeUVIndex(t *testing.T) *fakeUVIndex {
	t.Helper()
	plats := uvPlatforms()
	if len(plats) == 0 {
		t.Skip("uv has no wheel for this platform")
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range map[string]string{
		"uv/__init__.py":                          "",
		"uv-" + UVVersion + ".data/scripts/uv":    "#!/bin/sh\necho uv " + UVVersion + "\n",
		"uv-" + UVVersion + ".data/scripts/uvx":   "#!/bin/sh\n",
		"uv-" + UVVersion + ".dist-info/METADATA": "Name: uv\n",
	} {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	zw.Close()
	ix := &fakeUVIndex{wheel: buf.Bytes()}
	sum := sha256.Sum256(ix.wheel)
	ix.sha = hex.EncodeToString(sum[:])
	name := "uv-" + UVVersion + "-py3-none-" + plats[0] + ".whl"
	ix.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/simple/uv/":
			w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
			other := "uv-" + UVVersion + "-py3-none-win_amd64.whl"
			json.NewEncoder(w).Encode(map[string]any{"files": []map[string]any{
				{"filename": other, "url": "../../files/" + other, "hashes": map[string]string{"sha256": ix.sha}},
				// Relative, as some mirrors serve them.
				{"filename": name, "url": "../../files/" + name, "hashes": map[string]string{"sha256": ix.sha}},
			}})
		case "/files/" + name:
			ix.downloads.Add(1)
			w.Write(ix.wheel)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ix.srv.Close)
	return ix
}

func openTestCache(t *testing.T, cfg Config) *Cache {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The cache installs uv from the index once: found on the simple API,
// checked against the index's hash, only the binary extracted, read-only,
// reused by later caches and processes, installed again when changed.
func TestUVBootstrap(t *testing.T) {
	ix := newFakeUVIndex(t)
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{Dir: dir, Index: IndexOptions{IndexURL: ix.srv.URL + "/simple"}, UV: "", Resolver: "uv"}

	c := openTestCache(t, cfg)
	bin, err := c.ensureUV(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "tools", "uv-"+UVVersion, "uv"); bin != want || c.UVPath() != want {
		t.Fatalf("uv at %s, want %s", bin, want)
	}
	for p, mode := range map[string]os.FileMode{bin: 0o555, filepath.Dir(bin): 0o555} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %v", p, st.Mode(), err, mode)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(bin))
	if len(ents) != 1 {
		t.Errorf("tool folder holds %d entries, want only the binary", len(ents))
	}
	if ix.downloads.Load() != 1 {
		t.Fatalf("%d downloads", ix.downloads.Load())
	}
	var meta uvTool
	if b, err := os.ReadFile(filepath.Dir(bin) + ".json"); err != nil || json.Unmarshal(b, &meta) != nil || meta.SHA256 != ix.sha || meta.Stamp == "" {
		t.Fatalf("metadata %+v: %v", meta, err)
	}
	if got, _, err := c.resolver(ctx); err != nil || got != "uv" {
		t.Fatalf("resolver %q: %v", got, err)
	}

	// Reused by another cache on the same folder (another process) and by
	// several at once: no download.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := openTestCache(t, cfg).ensureUV(ctx); err != nil || b != bin {
				t.Errorf("reuse: %s %v", b, err)
			}
		}()
	}
	wg.Wait()
	if ix.downloads.Load() != 1 {
		t.Fatalf("%d downloads after reuse", ix.downloads.Load())
	}

	// Changed (made writable): installed again.
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := openTestCache(t, cfg).ensureUV(ctx); err != nil || b != bin {
		t.Fatalf("after a change: %s %v", b, err)
	}
	if st, _ := os.Stat(bin); ix.downloads.Load() != 2 || st.Mode().Perm() != 0o555 {
		t.Fatalf("after a change: %d downloads, mode %v", ix.downloads.Load(), st.Mode())
	}
}

// Concurrent first installs, in separate caches as separate processes
// would be, download and install uv once.
func TestUVBootstrapConcurrent(t *testing.T) {
	ix := newFakeUVIndex(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := openTestCache(t, Config{Dir: dir, Index: IndexOptions{IndexURL: ix.srv.URL + "/simple"}, Resolver: "uv"})
			if _, err := c.ensureUV(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := ix.downloads.Load(); n != 1 {
		t.Fatalf("%d downloads", n)
	}
}

// A wheel whose hash is not the index's is refused, clearly, and nothing
// is installed.
func TestUVBootstrapWrongHash(t *testing.T) {
	ix := newFakeUVIndex(t)
	good := ix.sha
	ix.sha = strings.Repeat("0", 64)
	dir := t.TempDir()
	c := openTestCache(t, Config{Dir: dir, Index: IndexOptions{IndexURL: ix.srv.URL + "/simple"}, Resolver: "uv"})
	_, err := c.ensureUV(context.Background())
	if err == nil || !strings.Contains(err.Error(), "sha256 "+good+" does not match the index's "+ix.sha) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(c.UVPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("uv installed despite a wrong hash: %v", err)
	}
	// With Resolver "uv" that is an error of the resolution, with a hint.
	_, _, err = c.resolver(context.Background())
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("resolver: %v", err)
	}
}

// Offline (or an index without uv), auto mode resolves with pip and says
// so once in the debug log; nothing is left in tools/.
func TestUVBootstrapOfflineFallsBackToPip(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	var log bytes.Buffer
	for _, idx := range []IndexOptions{
		{IndexURL: url + "/simple"},
		{NoIndex: true, FindLinks: []string{t.TempDir()}},
	} {
		t.Run(fmt.Sprint(idx.NoIndex), func(t *testing.T) {
			log.Reset()
			c := openTestCache(t, Config{Dir: t.TempDir(), Index: idx, UV: "",
				Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			if c.cfg.UV != "" {
				t.Skip("uv on PATH or in LAKEHOUSE_UV")
			}
			for i := 0; i < 2; i++ {
				got, _, err := c.resolver(context.Background())
				if err != nil || got != "pip" {
					t.Fatalf("resolver %q: %v", got, err)
				}
			}
			if n := strings.Count(log.String(), "resolving with pip"); n != 1 {
				t.Fatalf("%d notes:\n%s", n, log.String())
			}
			if _, err := os.Stat(filepath.Dir(c.UVPath())); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("tool folder: %v", err)
			}
		})
	}
}

func TestPickUVWheel(t *testing.T) {
	f := func(name string) indexFile {
		return indexFile{Filename: name, URL: "https://x/" + name, Hashes: map[string]string{"sha256": "s"}}
	}
	v := UVVersion
	files := []indexFile{
		f("uv-" + v + "-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl"),
		f("uv-" + v + "-py3-none-manylinux_2_28_aarch64.whl"),
		f("uv-" + v + "-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
		f("uv-" + v + "-py3-none-musllinux_1_1_x86_64.whl"),
		f("uv-0.0.1-py3-none-manylinux_2_17_x86_64.whl"),
		f("uv-" + v + ".tar.gz"),
	}
	for _, tc := range []struct {
		name  string
		plats []string
		want  string
	}{
		{"glibc x86_64", []string{"manylinux_2_17_x86_64", "manylinux2014_x86_64", "musllinux_1_1_x86_64"}, files[2].URL},
		{"musl x86_64", []string{"musllinux_1_1_x86_64"}, files[3].URL},
		{"glibc aarch64", []string{"manylinux_2_17_aarch64", "manylinux2014_aarch64", "musllinux_1_1_aarch64"}, files[0].URL},
		{"musl aarch64", []string{"musllinux_1_1_aarch64"}, files[0].URL},
		{"riscv64", []string{"manylinux_2_31_riscv64"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := pickUVWheel(files, tc.plats)
			if d.URL != tc.want || ok != (tc.want != "") {
				t.Fatalf("got %q %v, want %q", d.URL, ok, tc.want)
			}
		})
	}
}

// An interpreter's wheel tags are learnt once per machine: a later cache
// (another process) reads them from interpreters/.
func TestTagsKept(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := openTestCache(t, Config{Dir: dir, Resolver: "pip"})
	in, err := c.interp.Find(ctx, "3.11")
	if err != nil {
		t.Skip(err)
	}
	tags, err := c.interp.tags(ctx, in)
	if err != nil || len(tags) == 0 {
		t.Fatalf("tags: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "interpreters", "*.json"))
	if len(files) != 1 {
		t.Fatalf("kept tags: %v", files)
	}
	// What the next cache reads is the file, not the interpreter's answer.
	if err := os.WriteFile(files[0], []byte(`["py3-none-kept"]`), 0o644); err != nil {
		t.Fatal(err)
	}
	c2 := openTestCache(t, Config{Dir: dir, Resolver: "pip"})
	in2, err := c2.interp.Find(ctx, "3.11")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c2.interp.tags(ctx, in2); err != nil || len(got) != 1 || got["py3-none-kept"] != 0 {
		t.Fatalf("second cache: %v %v", got, err)
	}
}
