package catalog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	// MergeBases counts the merge bases in expired history whose table
	// states gc keeps (see gcroots.go), checked with the others.
	MergeBases int `json:"merge_bases"`
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
// its tree are stored and decode, and every table state those trees name,
// or the trees of the merge bases in expired history that gc keeps, loads
// (metadata file, manifest list, manifests) and has each of its data files
// with the size its manifest records. It reads, never repairs.
// The error is for a check that could not run (ctx done, the file locked);
// what is wrong is in the report.
func (l *Local) Doctor(ctx context.Context) (*DoctorReport, error) {
	r := &DoctorReport{Problems: []Problem{}}
	add := func(where, format string, args ...any) {
		if len(r.Problems) < maxDoctorProblems {
			r.Problems = append(r.Problems, Problem{Where: where, What: fmt.Sprintf(format, args...)})
		}
	}
	// One table state per metadata file, with where it was first seen;
	// those from bases on are the merge bases' (named so in problems).
	type state struct {
		id     TableIdent
		entry  TableEntry
		commit CommitID
	}
	var states []state
	bases := 0
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
		// Walk the history from every head (what gc keeps without a
		// commit retention: never expired history, whose files gc deleted).
		w := &keptWalk{
			damaged: func(id CommitID, tree TreeID, err error) error {
				switch {
				case id == "":
					add("history", "the merge bases of expired history cannot be found: %v", err)
				case tree == "":
					add("commit "+id.Short(), "cannot be read: %v", err)
				default:
					add("commit "+id.Short(), "its tree %s cannot be read: %v", tree, err)
				}
				return nil
			},
			state: func(id TableIdent, e TableEntry, at CommitID) {
				states = append(states, state{id: id, entry: e, commit: at})
			},
		}
		err := w.walk(ctx, tx, heads)
		if err == nil {
			// And the states gc keeps of the merge bases in expired
			// history (none without expired history).
			bases = len(states)
			r.MergeBases, err = w.keepMergeBases(ctx, tx)
		}
		r.Commits, r.Trees = w.commits, w.trees
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		add("catalog file", "%v", err)
		return r, nil
	}
	for i, s := range states {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.Tables++
		where := fmt.Sprintf("table %s at %s", s.id, s.commit.Short())
		if i >= bases {
			where += " (a merge base in expired history, kept by gc)"
		}
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
// a damaged file reported as an error. It reads every file from storage
// (WithFreshReads): a file damaged after the process read it is found.
func (l *Local) describeSafely(ctx context.Context, id TableIdent, e TableEntry) (info *TableInfo, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reading its files failed: %v", p)
		}
	}()
	return l.format.Describe(WithFreshReads(ctx), id, e)
}

type freshReadsKey struct{}

// WithFreshReads returns ctx for reads that must come from storage: a
// TableFormat consults none of its caches of files it takes as immutable
// (the iceberg format's manifests) under it. Doctor reads so.
func WithFreshReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshReadsKey{}, true)
}

// FreshReads reports whether ctx is WithFreshReads's.
func FreshReads(ctx context.Context) bool {
	v, _ := ctx.Value(freshReadsKey{}).(bool)
	return v
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
