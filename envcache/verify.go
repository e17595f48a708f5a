package envcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
)

// VerifyOptions say what Verify does about the differences it finds.
type VerifyOptions struct {
	// Fix removes every damaged package (metadata first, under its lock,
	// as gc does: the next environment that needs it installs it again)
	// and renews the stamp of a package whose content is intact but whose
	// file metadata changed (a copied cache, a chmod undone).
	Fix bool
	// Only, if set, are the packages to check (by Package.Hash); the
	// default is every installed package.
	Only []string
}

// Difference kinds.
const (
	DiffModified = "modified" // content or size differs from RECORD or the manifest
	DiffMissing  = "missing"  // recorded, not on disk
	DiffAdded    = "added"    // on disk, recorded nowhere (or not a regular file)
	DiffMode     = "mode"     // writable, or a folder that is not 0555
	DiffOwner    = "owner"    // not owned by the owner of the package folder
	DiffStamp    = "stamp"    // content intact, file metadata changed since install
	DiffUnsealed = "unsealed" // installed by an older lakehouse: no stamp or manifest
)

// Difference is one way a package folder differs from what was installed.
type Difference struct {
	// Path is slash-separated, relative to the package folder ("." is the
	// folder itself).
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Detail string `json:"detail,omitempty"`
}

// PackageCheck is the verification of one installed package.
type PackageCheck struct {
	Package     *Package     `json:"package"`
	Files       int          `json:"files"`
	Bytes       int64        `json:"bytes"`
	Differences []Difference `json:"differences,omitempty"`
	// Removed and Restamped say what Fix did.
	Removed   bool `json:"removed,omitempty"`
	Restamped bool `json:"restamped,omitempty"`
}

// Damaged says whether the package's content or permissions differ (not
// only its stamp).
func (pc *PackageCheck) Damaged() bool {
	for _, d := range pc.Differences {
		if d.Kind != DiffStamp {
			return true
		}
	}
	return false
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Packages int           `json:"packages"`
	Files    int           `json:"files"`
	Bytes    int64         `json:"bytes"`
	Took     time.Duration `json:"took_ns"`
	// Differ are the packages with a difference, by name.
	Differ []*PackageCheck `json:"differ"`
}

// Verify checks every installed package: each file against the SHA-256 of
// its wheel's RECORD (urlsafe base64, no padding, as the wheel spec has
// it) or, for the files RECORD does not hash (RECORD itself, bytecode
// compiled after install), of the manifest written at install; that
// nothing was added or removed; that files and folders have no write bits
// and one owner; and the stamp environments check. Each package is
// checked under its lock. It returns an error only when it cannot check;
// differences are in the report.
func (c *Cache) Verify(ctx context.Context, opt VerifyOptions) (*VerifyReport, error) {
	start := time.Now()
	pkgs, err := c.Packages()
	if err != nil {
		return nil, err
	}
	if opt.Only != nil {
		only := map[string]bool{}
		for _, h := range opt.Only {
			only[h] = true
		}
		var sel []*Package
		for _, p := range pkgs {
			if only[p.Hash] {
				sel = append(sel, p)
			}
		}
		pkgs = sel
	}
	checks := make([]*PackageCheck, len(pkgs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(2, runtime.NumCPU()))
	// Largest first: they bound the time.
	order := make([]int, len(pkgs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return pkgs[order[a]].Size > pkgs[order[b]].Size })
	for _, i := range order {
		g.Go(func() error {
			pc, err := c.verifyPackage(gctx, pkgs[i], opt)
			checks[i] = pc
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rep := &VerifyReport{Packages: len(pkgs), Differ: []*PackageCheck{}}
	for _, pc := range checks {
		rep.Files += pc.Files
		rep.Bytes += pc.Bytes
		if len(pc.Differences) > 0 {
			rep.Differ = append(rep.Differ, pc)
		}
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// maxDifferences bounds the differences listed for one package (a folder
// replaced wholesale would list thousands).
const maxDifferences = 50

func (c *Cache) verifyPackage(ctx context.Context, p *Package, opt VerifyOptions) (*PackageCheck, error) {
	pc := &PackageCheck{Package: p}
	release, err := c.lockPackage(ctx, p.Hash)
	if err != nil {
		return nil, err
	}
	defer release()
	cur := c.readPackage(p.Hash)
	if cur == nil {
		return pc, nil // removed meanwhile
	}
	pc.Package = cur
	stamp := c.checkContent(ctx, cur, pc)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(pc.Differences) > maxDifferences {
		n := len(pc.Differences) - maxDifferences
		pc.Differences = append(pc.Differences[:maxDifferences], Difference{Path: ".", Kind: "more", Detail: fmt.Sprintf("and %d more", n)})
	}
	if !opt.Fix || len(pc.Differences) == 0 {
		return pc, nil
	}
	if pc.Damaged() {
		// The metadata goes first: without it the folder is not installed.
		os.Remove(filepath.Join(c.pkgsDir(), cur.Hash+".json"))
		os.Remove(c.manifestFile(cur.Hash))
		if err := removeAll(cur.Dir); err != nil {
			return nil, fmt.Errorf("remove damaged package %s %s: %w", cur.Name, cur.Version, err)
		}
		pc.Removed = true
		return pc, nil
	}
	if err := c.writeMeta(cur, stamp); err != nil {
		return nil, err
	}
	pc.Restamped = true
	return pc, nil
}

// writeMeta rewrites p's metadata with stamp, keeping its last-use time.
func (c *Cache) writeMeta(p *Package, stamp string) error {
	meta := filepath.Join(c.pkgsDir(), p.Hash+".json")
	st, _ := os.Stat(meta)
	q := *p
	q.Stamp = stamp
	b, _ := json.MarshalIndent(&q, "", "  ")
	if err := writeFileAtomic(meta, b); err != nil {
		return err
	}
	if st != nil {
		os.Chtimes(meta, st.ModTime(), st.ModTime())
	}
	return nil
}

// checkContent adds p's differences to pc and returns the folder's stamp
// as it is now.
func (c *Cache) checkContent(ctx context.Context, p *Package, pc *PackageCheck) string {
	diff := func(path, kind, format string, args ...any) {
		pc.Differences = append(pc.Differences, Difference{Path: path, Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	entries, stamp, err := walkStamp(p.Dir)
	if err != nil {
		diff(".", DiffMissing, "%v", err)
		return ""
	}
	if p.Stamp == "" {
		diff(".", DiffUnsealed, "installed by an older lakehouse, without a stamp or manifest")
		return stamp
	}
	record, err := readRecords(p.Dir)
	if err != nil {
		diff(".", DiffModified, "RECORD is unreadable: %v", err)
		record = map[string]fileSum{}
	}
	manifest, err := c.readManifest(p.Hash)
	if err != nil || manifest == nil {
		diff(".", DiffUnsealed, "no manifest of the files RECORD does not hash (%v)", err)
		manifest = map[string]fileSum{}
	}
	owner := entries[0].uid
	onDisk := make(map[string]bool, len(entries))
	buf := make([]byte, 1<<20)
	for _, e := range entries {
		if ctx.Err() != nil {
			return ""
		}
		onDisk[e.rel] = true
		perm := e.mode & 0o7777
		if e.uid != owner {
			diff(e.rel, DiffOwner, "owned by uid %d, the folder by uid %d", e.uid, owner)
		}
		switch {
		case e.isDir():
			if perm != 0o555 {
				diff(e.rel, DiffMode, "folder mode %04o, want 0555", perm)
			}
			continue
		case !e.isRegular():
			diff(e.rel, DiffAdded, "not a regular file (mode %o)", e.mode)
			continue
		}
		if perm&0o222 != 0 || perm&0o444 != 0o444 || perm&^0o555 != 0 {
			diff(e.rel, DiffMode, "file mode %04o, want 0444 or 0555", perm)
		}
		// The manifest first: it holds the bytecode as compiled here,
		// which may replace a pyc the wheel shipped.
		want, ok := manifest[e.rel]
		if !ok || want.digest == nil {
			want, ok = record[e.rel]
		}
		if !ok || want.digest == nil {
			diff(e.rel, DiffAdded, "in neither RECORD nor the install manifest")
			continue
		}
		pc.Files++
		pc.Bytes += e.size
		if want.size >= 0 && want.size != e.size {
			diff(e.rel, DiffModified, "%d bytes, recorded %d", e.size, want.size)
			continue
		}
		got, err := hashFile(filepath.Join(p.Dir, filepath.FromSlash(e.rel)), want.algo, buf)
		if err != nil {
			diff(e.rel, DiffModified, "%v", err)
			continue
		}
		if !bytes.Equal(got, want.digest) {
			diff(e.rel, DiffModified, "%s differs from the recorded one", want.algo)
		}
	}
	for _, m := range []map[string]fileSum{record, manifest} {
		for rel := range m {
			if !onDisk[rel] {
				onDisk[rel] = true // listed in both: report once
				diff(rel, DiffMissing, "recorded, not on disk")
			}
		}
	}
	sort.SliceStable(pc.Differences, func(i, j int) bool { return pc.Differences[i].Path < pc.Differences[j].Path })
	if len(pc.Differences) == 0 && stamp != p.Stamp {
		diff(".", DiffStamp, "file times or inodes changed since install; the content is intact")
	}
	return stamp
}

var hashers = map[string]func() hash.Hash{"sha256": sha256.New, "sha384": sha512.New384, "sha512": sha512.New}

// hashFile returns the digest of a file with algo (sha256, sha384,
// sha512), reading through buf (nil: a new one).
func hashFile(path, algo string, buf []byte) ([]byte, error) {
	newHash, ok := hashers[algo]
	if !ok {
		return nil, fmt.Errorf("unsupported hash algorithm %q", algo)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := newHash()
	if buf == nil {
		buf = make([]byte, 256<<10)
	}
	if _, err := io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{f}, buf); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
