package catalog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// DoctorReport is what Local.Doctor found: how much it checked and what is
// wrong. The catalog is sound when Problems is empty.
type DoctorReport struct {
	Branches int `json:"branches"`
	Tags     int `json:"tags"`
	Commits  int `json:"commits"`
	Trees    int `json:"trees"`
	// Tables counts the distinct table states (metadata files) checked.
	Tables int `json:"table_states"`
	// Files counts the data files checked.
	Files    int       `json:"data_files"`
	Problems []Problem `json:"problems"`
}

// Problem is one thing Doctor found wrong.
type Problem struct {
	// Where names what is broken: "branch alice.dev", "commit 1a2b3c4d5e6f",
	// "table sales.orders at 1a2b3c4d5e6f", "data file <path>".
	Where string `json:"where"`
	What  string `json:"problem"`
}

// maxDoctorProblems bounds the report: past it, more detail does not help.
const maxDoctorProblems = 200

// Doctor checks that everything the catalog records is there: every branch
// and tag resolves to a stored commit, every commit reachable from them and
// its tree are stored and decode, and every table state those trees name
// loads (metadata file, manifest list, manifests) and has each of its local
// data files with the size its manifest records. It reads, never repairs.
// The error is for a check that could not run (ctx done, the file locked);
// what is wrong is in the report.
func (l *Local) Doctor(ctx context.Context) (*DoctorReport, error) {
	r := &DoctorReport{Problems: []Problem{}}
	add := func(where, format string, args ...any) {
		if len(r.Problems) < maxDoctorProblems {
			r.Problems = append(r.Problems, Problem{Where: where, What: fmt.Sprintf(format, args...)})
		}
	}
	// One table state per metadata file, with where it was first seen.
	type state struct {
		id     TableIdent
		entry  TableEntry
		commit CommitID
	}
	var states []state
	seenState := map[string]bool{}
	err := l.store.View(ctx, func(tx Tx) error {
		var heads []CommitID
		for _, kind := range []RefKind{KindBranch, KindTag} {
			refs, err := tx.ListRefs(kind)
			if err != nil {
				return err
			}
			if kind == KindBranch {
				r.Branches = len(refs)
			} else {
				r.Tags = len(refs)
			}
			for _, ref := range refs {
				if _, err := tx.GetCommit(ref.Commit); err != nil {
					add(fmt.Sprintf("%s %s", kind, ref.Name), "points at commit %s: %v", ref.Commit.Short(), err)
					continue
				}
				heads = append(heads, ref.Commit)
			}
		}
		// Walk the history from every head.
		seen := map[CommitID]bool{}
		seenTree := map[TreeID]bool{}
		for len(heads) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			id := heads[len(heads)-1]
			heads = heads[:len(heads)-1]
			if seen[id] {
				continue
			}
			seen[id] = true
			c, err := tx.GetCommit(id)
			if err != nil {
				add("commit "+id.Short(), "cannot be read: %v", err)
				continue
			}
			r.Commits++
			heads = append(heads, c.Parents...)
			if seenTree[c.Tree] {
				continue
			}
			seenTree[c.Tree] = true
			t, err := tx.GetTree(c.Tree)
			if err != nil {
				add("commit "+id.Short(), "its tree %s cannot be read: %v", c.Tree, err)
				continue
			}
			r.Trees++
			for _, tid := range slices.SortedFunc(maps.Keys(t.Tables), func(a, b TableIdent) int {
				return strings.Compare(a.String(), b.String())
			}) {
				e := t.Tables[tid]
				if !seenState[e.MetadataLocation] {
					seenState[e.MetadataLocation] = true
					states = append(states, state{id: tid, entry: e, commit: id})
				}
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		add("catalog file", "%v", err)
		return r, nil
	}
	for _, s := range states {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.Tables++
		where := fmt.Sprintf("table %s at %s", s.id, s.commit.Short())
		info, err := l.describeSafely(ctx, s.id, s.entry)
		if err != nil {
			add(where, "%v", err)
			continue
		}
		for _, f := range info.Files {
			r.Files++
			if fs, ok := l.format.(fileStatter); ok {
				size, err := fs.StatFile(ctx, f.Path)
				switch {
				case errdefs.Is(err, errdefs.ErrNotFound):
					add(where, "data file %s is missing", f.Path)
				case err != nil:
					add(where, "data file %s cannot be read: %v", f.Path, err)
				case size != f.Bytes:
					add(where, "data file %s is %d bytes, but its manifest records %d", f.Path, size, f.Bytes)
				}
				continue
			}
			p, ok := localPath(f.Path)
			if !ok {
				continue // not a local file: nothing here can check it
			}
			st, err := os.Stat(p)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				add(where, "data file %s is missing", f.Path)
			case err != nil:
				add(where, "data file %s cannot be read: %v", f.Path, err)
			case st.Size() != f.Bytes:
				add(where, "data file %s is %d bytes, but its manifest records %d", f.Path, st.Size(), f.Bytes)
			}
		}
	}
	return r, nil
}

// fileStatter is a TableFormat that can check its files wherever they are
// stored (a moved local warehouse, S3).
type fileStatter interface {
	// StatFile returns the size of the file at loc, ErrNotFound if it is
	// missing.
	StatFile(ctx context.Context, loc string) (int64, error)
}

// describeSafely is Describe, with a panic of the table format library on
// a damaged file reported as an error.
func (l *Local) describeSafely(ctx context.Context, id TableIdent, e TableEntry) (info *TableInfo, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reading its files failed: %v", p)
		}
	}()
	return l.format.Describe(ctx, id, e)
}

// localPath returns the local path of a file location (a plain path or a
// file: URI), and false for other schemes.
func localPath(loc string) (string, bool) {
	switch {
	case strings.HasPrefix(loc, "file://"):
		return strings.TrimPrefix(loc, "file://"), true
	case strings.HasPrefix(loc, "file:/"):
		return strings.TrimPrefix(loc, "file:"), true
	case strings.HasPrefix(loc, "/"):
		return loc, true
	}
	return "", false
}
