package envcache

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// indexFile is one file of a project page of a simple index.
type indexFile struct {
	Filename string            `json:"filename"`
	URL      string            `json:"url"`
	Hashes   map[string]string `json:"hashes"`
	Yanked   any               `json:"yanked"`
}

// yanked says whether the index marked the file yanked (PEP 691: false, or
// true / a reason).
func (f indexFile) yanked() bool {
	if f.Yanked == nil {
		return false
	}
	y, ok := f.Yanked.(bool)
	return !ok || y
}

var simpleAnchor = regexp.MustCompile(`<a\s+href="([^"]+)"([^>]*)>([^<]+)</a>`)

// simpleFiles lists the files of project name on the simple index at
// indexURL: the PEP 691 JSON form when the index offers it, else the PEP
// 503 HTML page. Relative URLs are resolved against the page's. It returns
// ErrNotFound when the index has no such project and ErrUnavailable when
// the index cannot be reached.
func simpleFiles(ctx context.Context, indexURL, name string) ([]indexFile, error) {
	page := strings.TrimSuffix(indexURL, "/") + "/" + name + "/"
	base, err := url.Parse(page)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "index URL %q: %v", indexURL, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, page, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.pypi.simple.v1+json, text/html;q=0.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, errdefs.New(errdefs.ErrUnavailable, "%v", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, errdefs.New(errdefs.ErrNotFound, "GET %s: %s", page, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, errdefs.New(errdefs.ErrUnavailable, "GET %s: %s", page, resp.Status)
	}
	var files []indexFile
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		var p struct {
			Files []indexFile `json:"files"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			return nil, fmt.Errorf("GET %s: %w", page, err)
		}
		files = p.Files
	} else { // PEP 503 HTML
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return nil, errdefs.New(errdefs.ErrUnavailable, "GET %s: %v", page, err)
		}
		for _, m := range simpleAnchor.FindAllStringSubmatch(string(b), -1) {
			u, attrs := html.UnescapeString(m[1]), m[2]
			f := indexFile{Filename: strings.TrimSpace(html.UnescapeString(m[3]))}
			if i := strings.Index(u, "#sha256="); i >= 0 {
				f.Hashes = map[string]string{"sha256": u[i+len("#sha256="):]}
				u = u[:i]
			}
			f.URL = u
			if strings.Contains(attrs, "data-yanked") {
				f.Yanked = true
			}
			files = append(files, f)
		}
	}
	for i, f := range files {
		if ref, err := url.Parse(f.URL); err == nil {
			files[i].URL = base.ResolveReference(ref).String()
		}
	}
	return files, nil
}
