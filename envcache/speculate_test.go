package envcache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// latestWheel picks what uv would pick for a bare name: the newest final,
// unyanked release's best-ranked platform wheel, from HTML or JSON pages.
func TestLatestWheel(t *testing.T) {
	tags := map[string]int{"cp311-cp311-manylinux_2_28_x86_64": 0, "cp311-cp311-manylinux_2_17_x86_64": 1, "py3-none-any": 9}
	sha := func(c byte) string { return fmt.Sprintf("%064x", c) }
	files := []struct{ name, extra string }{
		{"demo-1.9.0-cp311-cp311-manylinux_2_17_x86_64.whl", ""},
		{"demo-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl", ""},
		{"demo-2.0.0-cp311-cp311-manylinux_2_28_x86_64.whl", ""},
		{"demo-2.0.0-cp310-cp310-manylinux_2_28_x86_64.whl", ""},
		{"demo-2.1.0-cp311-cp311-manylinux_2_28_x86_64.whl", ` data-yanked=""`},
		{"demo-2.2.0rc1-cp311-cp311-manylinux_2_28_x86_64.whl", ""},
		{"demo-3.0.0-py3-none-any.whl", ""},
		{"demo-3.0.0.tar.gz", ""},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/simple/demo/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		for i, f := range files {
			fmt.Fprintf(w, "<a href=\"https://files.example/%s#sha256=%s\"%s>%s</a><br/>\n", f.name, sha(byte(i)), f.extra, f.name)
		}
	}))
	defer srv.Close()
	d, ok := latestWheel(context.Background(), srv.URL+"/simple", "demo", tags)
	want := Distribution{Name: "demo", Version: "2.0.0", URL: "https://files.example/demo-2.0.0-cp311-cp311-manylinux_2_28_x86_64.whl", SHA256: sha(2)}
	if !ok || d != want {
		t.Fatalf("got %+v %v\nwant %+v", d, ok, want)
	}
	if _, ok := latestWheel(context.Background(), srv.URL+"/simple", "nothing", tags); ok {
		t.Fatal("a wheel for an unknown package")
	}
}
