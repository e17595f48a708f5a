package envcache

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Speculative installs: a cold resolution with uv spends ~1.5 s waiting on
// the index while the machine's cores are idle. Meanwhile each requirement
// that is a bare name ("pandas", and the runner's "pyarrow") is looked up
// in the index's simple API (simpleFiles) and the wheel
// uv would most likely pick (the newest final release, best-ranked tags:
// the rule of parsePylock) is installed, platform wheels only (the big
// ones). Installs are content-addressed by the file's hash, so when the
// resolution lists that file its install is already done or in progress
// under its lock; when it does not (a constraint elsewhere chose another
// version) the folder is unused and gc removes it. Only with the uv
// resolver and an https index.

// speculateMax bounds the speculative installs of one resolution.
const speculateMax = 4

var preRelease = regexp.MustCompile(`(?i)(a|b|c|rc|alpha|beta|pre|preview|dev)[0-9]*($|\.)`)

// speculate starts speculative installs for reqs on wg.
func (c *Cache) speculate(ctx context.Context, wg *sync.WaitGroup, in *Interpreter, reqs []string) {
	idx := c.cfg.Index
	if c.cfg.Resolver == "pip" || idx.NoIndex || len(idx.FindLinks) > 0 || !strings.HasPrefix(idx.IndexURL, "https://") {
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
			// The index is asked while the interpreter tells its tags.
			filesc := make(chan []indexFile, 1)
			go func() {
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				files, _ := simpleFiles(lctx, idx.IndexURL, normalizeName(name))
				filesc <- files
			}()
			tags, err := c.interp.tags(ctx, in)
			files := <-filesc
			if err != nil {
				return
			}
			d, ok := pickLatestWheel(files, normalizeName(name), tags)
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
	files, err := simpleFiles(ctx, indexURL, name)
	if err != nil {
		return Distribution{}, false
	}
	return pickLatestWheel(files, name, tags)
}

// pickLatestWheel returns the newest final release's best platform wheel
// for tags among the files of project name.
func pickLatestWheel(files []indexFile, name string, tags map[string]int) (Distribution, bool) {
	var best Distribution
	bestRank := -1
	for _, f := range files {
		// Platform wheels only: their tags name the interpreter, so the
		// newest one fits it (requires-python is not checked), and they
		// are the big installs; pure wheels are left to the resolver.
		if !strings.HasSuffix(f.Filename, ".whl") || strings.HasSuffix(f.Filename, "-any.whl") || f.Hashes["sha256"] == "" || f.yanked() {
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
			best = Distribution{Name: name, Version: ver, URL: f.URL, SHA256: f.Hashes["sha256"]}
			bestRank = rank
		}
	}
	return best, best.Version != ""
}
