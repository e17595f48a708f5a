package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/planner"
)

// resultCache keeps model outputs (Arrow IPC files) by a key over
// everything that determines them: code, environment, inputs and
// parameters. A model whose key is in the cache is not run; its cached
// output is copied into the run folder instead.
type resultCache struct {
	dir      string
	max      int64
	maxEntry int64
}

type cacheMeta struct {
	Run         string `json:"run"`
	Model       string `json:"model"`
	Rows        int64  `json:"rows"`
	Fingerprint string `json:"fingerprint"`
	// Table and Snapshot are where the output was written, if it was.
	Table    string    `json:"table,omitempty"`
	Snapshot int64     `json:"snapshot_id,omitempty"`
	Stored   time.Time `json:"stored"`
}

// cacheKey is the model's result cache key, "" if it must run anyway (an
// expectation, cache=False, an upstream without a key or fingerprint, or
// an environment that cannot be assembled).
func (r *run) cacheKey(ctx context.Context, nd *node) string {
	n := nd.n
	if !n.Cache || n.Kind != "model" {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "lakehouse-result-v1\x00%s\x00%s\x00%s\x00%s\x00", n.Language, n.Name, n.Function, n.SQL)
	code, err := os.ReadFile(filepath.Join(r.opts.Runs.CodeDir(r.opts.ID), n.File))
	if err != nil {
		return ""
	}
	fmt.Fprintf(h, "%d\x00", len(code))
	h.Write(code)
	if n.Python != nil {
		fmt.Fprintf(h, "py\x00%s\x00%s\x00", n.Python.Version, strings.Join(n.Python.Requirements, "\x01"))
		// What the requirements resolved to and the interpreter's own
		// version: a new release of a package a range allows, or another
		// patch release of Python, is another environment.
		env, err := r.env(ctx, n)
		if err != nil {
			return ""
		}
		fmt.Fprintf(h, "interp\x00%s\x00", env.Python.Version)
		for _, p := range env.Packages {
			fmt.Fprintf(h, "pkg\x00%s\x00%s\x00", p.Name, p.Version)
		}
		// The module may import the project's other modules and read
		// its other files.
		support := r.pythonSupportHash()
		if support == "" {
			return ""
		}
		fmt.Fprintf(h, "support\x00%s\x00", support)
	}
	for _, in := range n.Inputs {
		fmt.Fprintf(h, "in\x00%s\x00%s\x00%s\x00%s\x00", in.Param, in.Name, strings.Join(in.Columns, "\x01"), in.Filter)
		switch in.Source {
		case "table":
			fmt.Fprintf(h, "%s\x00%d\x00", in.Table, in.SnapshotID)
		default:
			up := r.nodes[in.Model]
			switch {
			case up.key != "":
				fmt.Fprintf(h, "key\x00%s\x00", up.key)
			case up.rec.Fingerprint != "":
				fmt.Fprintf(h, "fp\x00%s\x00%d\x00", up.rec.Fingerprint, up.rec.Rows)
			default:
				return ""
			}
		}
	}
	for _, p := range n.Parameters {
		v, _ := json.Marshal(p.Value)
		fmt.Fprintf(h, "param\x00%s\x00%s\x00%s\x00", p.Param, p.Name, v)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pythonSupportHash hashes the snapshot's files a Python function may
// import or read: every file but SQL models and lakehouse.yml (whose
// parameters and versions the key holds already). "" if one is unreadable.
func (r *run) pythonSupportHash() string {
	r.supportOnce.Do(func() {
		h := sha256.New()
		dir := r.opts.Runs.CodeDir(r.opts.ID)
		for _, f := range r.rec.Files {
			if strings.HasSuffix(strings.ToLower(f), ".sql") || f == planner.ConfigFile {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
			if err != nil {
				return
			}
			fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
			h.Write(b)
		}
		r.support = hex.EncodeToString(h.Sum(nil))
	})
	return r.support
}

func (c *resultCache) paths(key string) (data, meta string) {
	return filepath.Join(c.dir, key+".arrow"), filepath.Join(c.dir, key+".json")
}

// get copies the cached output of key to dst.
func (c *resultCache) get(key, dst string) (cacheMeta, bool) {
	data, meta := c.paths(key)
	var m cacheMeta
	b, err := os.ReadFile(meta)
	if err != nil || json.Unmarshal(b, &m) != nil {
		return m, false
	}
	if err := copyFile(data, dst); err != nil {
		os.Remove(dst)
		return m, false
	}
	now := time.Now()
	os.Chtimes(meta, now, now)
	return m, true
}

// put stores a copy of src under key and evicts the least recently used
// entries beyond the size bound.
func (c *resultCache) put(key, src string, m cacheMeta) {
	st, err := os.Stat(src)
	if err != nil || st.Size() > c.max/2 || st.Size() > c.maxEntry {
		return
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return
	}
	data, meta := c.paths(key)
	if err := copyFile(src, data); err != nil {
		return
	}
	m.Stored = time.Now().UTC()
	b, _ := json.Marshal(m)
	if writeFileAtomic(meta, b) != nil {
		os.Remove(data)
		return
	}
	c.evict()
}

func (c *resultCache) evict() {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type entry struct {
		key  string
		size int64
		used time.Time
	}
	var all []entry
	var total int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			// Left by a process that died while it wrote.
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.Remove(filepath.Join(c.dir, e.Name()))
			}
			continue
		}
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		key := strings.TrimSuffix(e.Name(), ".json")
		mi, err1 := e.Info()
		di, err2 := os.Stat(filepath.Join(c.dir, key+".arrow"))
		if err1 != nil || err2 != nil {
			continue
		}
		all = append(all, entry{key, di.Size(), mi.ModTime()})
		total += di.Size()
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.Before(all[j].used) })
	for _, e := range all {
		if total <= c.max {
			break
		}
		data, meta := c.paths(e.key)
		os.Remove(meta)
		os.Remove(data)
		total -= e.size
	}
}

// copyFile copies src to dst through a temporary file of its own (several
// runs may store the same key at once).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := out.Name()
	if err := out.Chmod(0o644); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeFileAtomic writes b to path through a temporary file of its own.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
