package envcache

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// TestDownloadProgress downloads a file with and without an announced
// size and checks what the progress callback was told: bytes only grow,
// and end at every byte of both files, both complete.
func TestDownloadProgress(t *testing.T) {
	body := bytes.Repeat([]byte("wheel"), 200_000) // 1 MB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		w.Write(body)
	}))
	defer srv.Close()
	var reports []DownloadProgress
	dl := &downloads{report: func(p DownloadProgress) { reports = append(reports, p) }}
	for _, path := range []string{"/sized", "/chunked"} {
		data, _, err := download(context.Background(), srv.URL+path, filepath.Join(t.TempDir(), "f"), dl)
		if err != nil {
			t.Fatal(err)
		}
		if data != nil && !bytes.Equal(data, body) {
			t.Fatalf("%s: the download differs", path)
		}
	}
	if len(reports) < 6 {
		t.Fatalf("%d reports, want a start, bytes and an end for each file: %+v", len(reports), reports)
	}
	var prev DownloadProgress
	for i, p := range reports {
		if p.Bytes < prev.Bytes || p.Done < prev.Done || p.Files < prev.Files || p.Done > p.Files {
			t.Fatalf("report %d goes back: %+v after %+v", i, p, prev)
		}
		prev = p
	}
	want := DownloadProgress{Files: 2, Done: 2, Bytes: 2 * int64(len(body)), TotalBytes: 2 * int64(len(body))}
	if prev != want {
		t.Errorf("last report %+v, want %+v", prev, want)
	}
	// Without a callback nothing is counted.
	var none downloads
	add, end := none.begin(10)
	add(10)
	end()
	if none.p != (DownloadProgress{}) {
		t.Errorf("counted without a callback: %+v", none.p)
	}
}
