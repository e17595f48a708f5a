package runrec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// The code a run shipped is stored once per content: runs/code/<hash>/,
// files 0444 and folders 0555, where <hash> is the run's CodeHash (a
// SHA-256 over the files' names, sizes and contents, in walk order). A
// run's runs/<id>/code is a relative link to it, so runs of the same code
// share one copy, and `rerun` hashes the folder again before it plans
// from it (VerifyCode). Records written before this layout have a code
// folder of their own, checked the same way.

// codeRoot holds the content-addressed code folders.
func (s *Store) codeRoot() string { return filepath.Join(s.Dir, "code") }

// CodeDir is where a run's project files are kept: the content-addressed
// folder its code link points to (its own code/ folder for older runs).
func (s *Store) CodeDir(id string) string {
	link := filepath.Join(s.dir(id), "code")
	target, err := os.Readlink(link)
	if err != nil {
		return link
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(s.dir(id), target)
	}
	return filepath.Clean(target)
}

// IsProjectFile says whether p (whose walk entry is d) is part of the code
// a run ships: a client sending a project to a server sends these files.
func IsProjectFile(p string, d fs.DirEntry) bool { return projectFile(p, d) }

// projectFile says whether a project file is part of the code a run ships.
// A link to a regular file counts as that file (the planner reads through
// it, so the run must have it).
func projectFile(p string, d fs.DirEntry) bool {
	name := d.Name()
	if strings.HasPrefix(name, ".") || name == "__pycache__" {
		return false
	}
	if d.IsDir() {
		return true
	}
	if !d.Type().IsRegular() {
		if d.Type()&fs.ModeSymlink == 0 {
			return false
		}
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".py", ".sql", ".yml", ".yaml", ".json", ".txt", ".toml", ".cfg":
		return true
	}
	return false
}

// maxCode bounds the code a run snapshots.
const maxCode = 64 << 20

// SnapshotCode copies the project's code files (Python, SQL, YAML and small
// text files; no hidden folders) into the content-addressed code store,
// links the run's code folder to it and returns their paths and a SHA-256
// over names and contents.
func (s *Store) SnapshotCode(id, projectDir string) (files []string, hash string, err error) {
	if err := os.MkdirAll(s.codeRoot(), 0o755); err != nil {
		return nil, "", err
	}
	tmp, err := os.MkdirTemp(s.codeRoot(), codeTmpPrefix+id+"-")
	if err != nil {
		return nil, "", err
	}
	defer removeTree(tmp)
	h := sha256.New()
	var total int64
	var dirs []string
	err = filepath.WalkDir(projectDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(projectDir, p)
		if rel == "." {
			dirs = append(dirs, tmp)
			return nil
		}
		if !projectFile(p, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, filepath.Join(tmp, rel))
			return os.Mkdir(filepath.Join(tmp, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += int64(len(b))
		if total > maxCode {
			return errdefs.WithHint(errdefs.ErrInvalidArgument, "keep data files out of the project folder",
				"the project folder %s holds more than %d MiB of code files", projectDir, maxCode>>20)
		}
		files = append(files, filepath.ToSlash(rel))
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
		return os.WriteFile(filepath.Join(tmp, rel), b, 0o444)
	})
	if err != nil {
		return nil, "", err
	}
	hash = hex.EncodeToString(h.Sum(nil))
	// Read-only, deepest folders first.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i], 0o555); err != nil {
			return nil, "", err
		}
	}
	if err := s.storeCode(tmp, hash); err != nil {
		return nil, "", err
	}
	if err := os.Symlink(filepath.Join("..", "code", hash), filepath.Join(s.dir(id), "code")); err != nil {
		return nil, "", err
	}
	return files, hash, nil
}

// codeTmpPrefix names the folder SnapshotCode fills: .tmp-<id>-<random>.
const codeTmpPrefix = ".tmp-"

// cleanCodeTmp removes the folders of interrupted SnapshotCode calls: those
// of runs whose process is gone or that ended, and any older than
// staleAfter. listed are the records List read before; a run created
// since (another process, or another run of a server, starting meanwhile)
// is read now: a run's record is created before its code folder, so the
// folder of a live run always finds its record.
func (s *Store) cleanCodeTmp(listed map[string]*Record) {
	ents, err := os.ReadDir(s.codeRoot())
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), codeTmpPrefix)
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(rest, "-")
		r, ok := listed[id]
		if !ok {
			r, _ = s.read(id)
		}
		info, ierr := e.Info()
		if r == nil || !snapshotting(r) || ierr == nil && time.Since(info.ModTime()) > staleAfter {
			removeTree(filepath.Join(s.codeRoot(), e.Name()))
		}
	}
}

// snapshotting reports whether run r may still be copying its code: it
// runs, or it is a dry run (planned) whose process lives.
func snapshotting(r *Record) bool {
	return r.Live() == StatusRunning || r.Status == StatusPlanned && processAlive(r.PID, r.PIDStart, r.Boot)
}

// storeCode moves the sealed folder tmp to runs/code/<hash>, unless an
// intact copy is there already; a damaged copy is replaced.
func (s *Store) storeCode(tmp, hash string) error {
	dst := filepath.Join(s.codeRoot(), hash)
	for attempt := 0; attempt < 3; attempt++ {
		if _, err := os.Lstat(dst); err == nil {
			if _, got, err := hashCode(dst); err == nil && got == hash {
				return nil
			}
			// Damaged: moved aside and removed, then replaced.
			aside, err := os.MkdirTemp(s.codeRoot(), ".damaged-")
			if err != nil {
				return err
			}
			aside = filepath.Join(aside, hash)
			if err := os.Rename(dst, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removeTree(filepath.Dir(aside))
		}
		err := os.Rename(tmp, dst)
		if err == nil {
			return nil
		}
		if _, serr := os.Lstat(dst); serr != nil {
			return err
		}
		// Another run stored the same code meanwhile: check it again.
	}
	return fmt.Errorf("storing code %s: it keeps changing", hash)
}

// hashCode hashes a code folder as SnapshotCode did: every regular file,
// in walk order. Anything else (a link, a device) is an error.
func hashCode(dir string) (files []string, hash string, err error) {
	h := sha256.New()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", rel)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, rel)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

// CodeChangedError says a run's recorded code no longer hashes to the
// hash its record holds. It has no error class (exit 1).
type CodeChangedError struct {
	ID     string
	Dir    string
	Detail string
}

func (e *CodeChangedError) Error() string {
	return fmt.Sprintf("the recorded code of run %s (%s) no longer matches its record: %s; "+
		"it was changed after the run and will not be run again as that run (run the project with `lakehouse run` instead)",
		e.ID, e.Dir, e.Detail)
}

// VerifyCode checks that the code folder of r still holds exactly the
// files r shipped: the same names and contents (r.CodeHash). It returns a
// *CodeChangedError when it does not.
func (s *Store) VerifyCode(r *Record) error {
	dir := s.CodeDir(r.ID)
	changed := func(format string, args ...any) error {
		return &CodeChangedError{ID: r.ID, Dir: dir, Detail: fmt.Sprintf(format, args...)}
	}
	if r.CodeHash == "" {
		return changed("the record holds no code hash")
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return changed("the code folder is missing")
	}
	files, hash, err := hashCode(dir)
	if err != nil {
		return changed("%v", err)
	}
	if hash == r.CodeHash {
		return nil
	}
	var added, removed []string
	for _, f := range files {
		if !slices.Contains(r.Files, f) {
			added = append(added, f)
		}
	}
	for _, f := range r.Files {
		if !slices.Contains(files, f) {
			removed = append(removed, f)
		}
	}
	switch {
	case len(added) > 0:
		return changed("files added: %s", strings.Join(added, ", "))
	case len(removed) > 0:
		return changed("files removed: %s", strings.Join(removed, ", "))
	}
	return changed("sha256 %s, recorded %s", short(hash), short(r.CodeHash))
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// releaseCode removes the content-addressed code folder hash when no run
// links to it any more.
func (s *Store) releaseCode(hash string) error {
	ids, err := s.ids()
	if err != nil {
		return err
	}
	dir := filepath.Join(s.codeRoot(), hash)
	for _, id := range ids {
		if s.CodeDir(id) == dir {
			return nil
		}
	}
	return removeTree(dir)
}

// removeTree removes a tree that may have read-only folders.
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
