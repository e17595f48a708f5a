package envcache

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Speculative installs: a cold resolution with uv spends ~1.5 s waiting on
// the index while the machine's cores are idle. Meanwhile each requirement
// that is a bare name ("pandas", and the runner's "pyarrow") is looked up
// in the index's simple API (PEP 691 JSON or PEP 503 HTML) and the wheel
// uv would most likely pick (the newest final release, best-ranked tags:
// the rule of parsePylock) is installed, platform wheels only (the big
// ones). Installs are content-addressed by the file's hash, so when the
// resolution lists that file its install is already done or in progress
// under its lock; when it does not (a constraint elsewhere chose another
// version) the folder is unused and gc removes it. Only with the uv
// resolver and an https index.

// speculateMax bounds the speculative installs of one resolution.
const speculateMax = 4

var simpleAnchor = regexp.MustCompile(`<a\s+href="([^"]+)"([^>]*)>([^<]+)</a>`)

var preRelease = regexp.MustCompile(`(?i)(a|b|c|rc|alpha|beta|pre|preview|dev)[0-9]*($|\.)`)

// speculate starts speculative installs for reqs on wg.
func (c *Cache) speculate(ctx context.Context, wg *sync.WaitGroup, in *Interpreter, reqs []string) {
	idx := c.cfg.Index
	if c.cfg.Resolver != "uv" || idx.NoIndex || len(idx.FindLinks) > 0 || !strings.HasPrefix(idx.IndexURL, "https://") {
		return
	}
	n := 0
	for _, r := range reqs {
		name := strings.TrimSpace(r)
		if reqNameRE.FindString(name) != name || n == speculateMax {
			continue // a version constraint, extras or markers: leave it to the resolver
		}
		n++
		wg.Add(1)
		go func() {
			defer wg.Done()
			tags, err := c.interp.tags(ctx, in)
			if err != nil {
				return
			}
			d, ok := latestWheel(ctx, idx.IndexURL, normalizeName(name), tags)
			if !ok {
				return
			}
			if _, err := c.install(ctx, in, d); err != nil {
				c.log.Debug("speculative install", "name", d.Name, "err", err)
			}
		}()
	}
}

// latestWheel asks the simple API for name's files and returns the newest
// final release's best platform wheel for tags.
func latestWheel(ctx context.Context, indexURL, name string, tags map[string]int) (Distribution, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(indexURL, "/")+"/"+name+"/", nil)
	if err != nil {
		return Distribution{}, false
	}
	req.Header.Set("Accept", "application/vnd.pypi.simple.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Distribution{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Distribution{}, false
	}
	type file struct {
		Filename string            `json:"filename"`
		URL      string            `json:"url"`
		Hashes   map[string]string `json:"hashes"`
		Yanked   any               `json:"yanked"`
	}
	var page struct {
		Files []file `json:"files"`
	}
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if json.NewDecoder(resp.Body).Decode(&page) != nil {
			return Distribution{}, false
		}
	} else { // PEP 503 HTML
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return Distribution{}, false
		}
		for _, m := range simpleAnchor.FindAllStringSubmatch(string(b), -1) {
			u, attrs := html.UnescapeString(m[1]), m[2]
			f := file{Filename: strings.TrimSpace(html.UnescapeString(m[3]))}
			if i := strings.Index(u, "#sha256="); i >= 0 {
				f.Hashes = map[string]string{"sha256": u[i+len("#sha256="):]}
				u = u[:i]
			}
			f.URL = u
			if strings.Contains(attrs, "data-yanked") {
				f.Yanked = true
			}
			page.Files = append(page.Files, f)
		}
	}
	var best Distribution
	bestRank := -1
	for _, f := range page.Files {
		// Platform wheels only: their tags name the interpreter, so the
		// newest one fits it (requires-python is not checked), and they
		// are the big installs; pure wheels are left to the resolver.
		if !strings.HasSuffix(f.Filename, ".whl") || strings.HasSuffix(f.Filename, "-any.whl") || f.Hashes["sha256"] == "" {
			continue
		}
		if y, ok := f.Yanked.(bool); f.Yanked != nil && (!ok || y) {
			continue
		}
		parts := strings.Split(f.Filename, "-")
		if len(parts) < 5 {
			continue
		}
		ver := parts[1]
		if preRelease.MatchString(ver) {
			continue
		}
		rank, ok := wheelRank(f.Filename, tags)
		if !ok {
			continue
		}
		if best.Version == "" || versionLess(best.Version, ver) || best.Version == ver && rank < bestRank {
			if !strings.Contains(f.URL, "://") {
				continue // relative URLs: leave it to the resolver
			}
			best = Distribution{Name: name, Version: ver, URL: f.URL, SHA256: f.Hashes["sha256"]}
			bestRank = rank
		}
	}
	return best, best.Version != ""
}
