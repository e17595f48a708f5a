package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// Garbage collection removes the warehouse files that no kept catalog
// state references: orphans of killed or failed imports and runs, the
// files of dropped branches and tables, and, with ExpireCommits, those of
// history older than a retention. What is kept:
//
//   - every commit reachable from a branch or tag (with ExpireCommits: the
//     heads, every commit newer than the cutoff, the last commit at or
//     before the cutoff on every path, so that time travel to any time
//     within the retention still resolves and reads, and every tagged
//     commit);
//   - with history expired (now or by an earlier collection), the table
//     states of the merge base of any two kept commits where it is in that
//     history: a later merge of the two, or of branches made from them,
//     reads them (gcroots.go);
//   - the commits in-flight writers started from (writer records, see
//     writers.go, and Holds given by the caller, such as running runs);
//   - from each table state those commits name, everything it references
//     (TableFiles decides, by format);
//   - every file modified after the grace period began, or after the
//     oldest in-flight writer started.
//
// Files are matched by their warehouse key, never by table name, so a
// file shared by two tables (after a revert or a rename) or by a table
// dropped on one branch and alive on another stays while any of them
// references it.
//
// History let go is recorded as expired (gcroots.go): it leaves the log
// and time travel, and later collections neither keep nor look for its
// files. On a local warehouse, the folders the deletes emptied go too,
// never the root nor a table folder in use, and none while a writer is in
// flight (it may be about to write into one).

// ObjectInfo describes one stored file of the warehouse: Key relative to
// the warehouse root, with '/' separators.
type ObjectInfo = warehouse.ObjectInfo

// Objects lists and deletes the files of a warehouse (a local directory,
// an S3 prefix).
type Objects interface {
	// List calls fn for every file whose key starts with prefix. An error
	// from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes the file key. Deleting a file that is not there is
	// not an error.
	Delete(ctx context.Context, key string) error
}

// Uploads is implemented by warehouses whose unfinished writes are kept
// apart from their files (S3's multipart uploads: invisible, but stored
// until aborted). GC aborts those begun before its floor.
type Uploads interface {
	// AbortUploads aborts the unfinished uploads begun before before, or
	// with dryRun only lists them, and returns their keys.
	AbortUploads(ctx context.Context, before time.Time, dryRun bool) ([]string, error)
}

// EmptyDirs is implemented by warehouses that keep folders (a local
// directory): GC removes the folders its deletes emptied.
type EmptyDirs interface {
	// RemoveEmptyDirs removes the empty folders of the warehouse (never
	// its root) that held keys (files just deleted), that it empties so,
	// or that were not modified since before; except those keep returns
	// true for, and the folders in those. It returns the removed folders'
	// keys.
	RemoveEmptyDirs(ctx context.Context, keys []string, before time.Time, keep func(dir string) bool) ([]string, error)
}

// TableFiles finds the warehouse files table states reference. It knows
// the table format (catalog/iceberg implements it), so that this package
// does not.
type TableFiles interface {
	// ReferencedFiles calls fn with the key (as Objects names it) of every
	// warehouse file the table states reference: each state's metadata
	// file and what it references; and, ending in '/', the key of each
	// state's table folder (GC removes no folder in it). Snapshots made
	// before since that no state has current are left out, with what only
	// they reference (zero since keeps every snapshot). Every file key
	// passed to fn names a file the states need: one that Objects does
	// not list is missing. A file it reads that is missing (deleted behind
	// the catalog's back) is named in missing, by key (by location outside
	// the warehouse), not an error, and then every file of that table is
	// reported, since what the missing file referenced is unknown. Files
	// outside the warehouse are not reported.
	ReferencedFiles(ctx context.Context, states []TableEntry, since time.Time, fn func(key string)) (missing []string, err error)
}

// GCOptions configure a garbage collection.
type GCOptions struct {
	// Objects lists and deletes the warehouse files. Required.
	Objects Objects
	// Tables finds what table states reference. Required.
	Tables TableFiles
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Grace keeps every file modified less than Grace ago. Default 24h;
	// negative is an error.
	Grace time.Duration
	// ExpireCommits, if positive, lets history older than it go: see the
	// package comment above. Zero keeps all history.
	ExpireCommits time.Duration
	// Holds are in-flight writers the catalog does not know of (running
	// runs): their commits are kept, and files modified since they began.
	Holds []Hold
	// IgnoreBranches are treated as deleted (a dry run of expiring them).
	IgnoreBranches []BranchName
	// Now is the current time. Default time.Now.
	Now func() time.Time
	// Parallel bounds deletes at once. Default 8.
	Parallel int
}

// Hold is an in-flight writer: what it reads and since when it writes.
type Hold struct {
	What    string
	Since   time.Time
	Commits []CommitID
}

// Validate checks the options and fills in defaults.
func (o *GCOptions) Validate() error {
	switch {
	case o.Objects == nil || o.Tables == nil:
		return errdefs.New(errdefs.ErrInvalidArgument, "gc: Objects and Tables are required")
	case o.Grace < 0:
		return errdefs.New(errdefs.ErrInvalidArgument, "gc: the grace period %s is negative", o.Grace)
	case o.ExpireCommits < 0:
		return errdefs.New(errdefs.ErrInvalidArgument, "gc: the commit retention %s is negative", o.ExpireCommits)
	case o.Parallel < 0:
		return errdefs.New(errdefs.ErrInvalidArgument, "gc: Parallel is negative")
	}
	if o.Grace == 0 {
		o.Grace = DefaultGCGrace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Parallel == 0 {
		o.Parallel = 8
	}
	return nil
}

// DefaultGCGrace is the default grace period of a garbage collection.
const DefaultGCGrace = 24 * time.Hour

// writerSlack is how long before its recorded start an in-flight writer's
// files may be dated (clock steps, the coarse times of object stores).
const writerSlack = time.Minute

// GCResult reports a garbage collection.
type GCResult struct {
	DryRun bool `json:"dry_run"`
	// Deleted are the files deleted (or, in a dry run, to be deleted),
	// sorted by key.
	Deleted []GCFile `json:"deleted"`
	// DeletedBytes is the size of Deleted.
	DeletedBytes int64 `json:"deleted_bytes"`
	// Commits and States count the kept commits and table states.
	Commits int `json:"kept_commits"`
	States  int `json:"kept_table_states"`
	// Referenced counts the files kept because a kept state references
	// them; Recent those kept because they are younger than the grace
	// period or an in-flight writer.
	Referenced int   `json:"referenced_files"`
	Recent     int   `json:"recent_files"`
	KeptBytes  int64 `json:"kept_bytes"`
	// Writers counts the in-flight writers that held files.
	Writers int `json:"in_flight_writers"`
	// Missing names, by key and sorted, the files kept table states
	// reference that are not there: metadata files, manifest lists and
	// manifests (whose tables then lose nothing, since what they
	// referenced is unknown), and data, delete and statistics files.
	Missing []string `json:"missing,omitempty"`
	// Cutoff is the time before which history was let go (zero: none).
	Cutoff time.Time `json:"commit_cutoff,omitzero"`
	// ExpiredCommits counts the commits of that history: they leave the
	// log (see gcroots.go).
	ExpiredCommits int `json:"expired_commits"`
	// MergeBases counts the merge bases of two kept commits in the
	// history let go (now or before) whose table states were kept, so
	// that a merge of those two still reads them.
	MergeBases int `json:"kept_merge_bases,omitempty"`
	// Uploads are the unfinished uploads (of killed imports and runs)
	// aborted, or in a dry run to be aborted, by key.
	Uploads []string `json:"aborted_uploads,omitempty"`
	// RemovedDirs are the folders of a local warehouse the deletes
	// emptied, removed (never in a dry run, nor while writers are in
	// flight: one may be about to write there).
	RemovedDirs []string `json:"removed_dirs,omitempty"`
}

// GCFile is one deleted file.
type GCFile struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// GC deletes the warehouse files no kept state references and that are
// older than the grace period (see the comment at the top of gc.go). It
// never changes refs; with ExpireCommits, the commits older than the
// retention that are not kept are recorded as expired (gcroots.go), before
// any file goes. A failure to delete some files is an
// error after the others were deleted; the result says what was.
func (l *Local) GC(ctx context.Context, opts GCOptions) (*GCResult, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	res := &GCResult{DryRun: opts.DryRun, Deleted: []GCFile{}}
	now := opts.Now()
	if opts.ExpireCommits > 0 {
		res.Cutoff = now.Add(-opts.ExpireCommits).UTC()
	}
	writers, err := l.liveWriters(ctx, !opts.DryRun)
	if err != nil {
		return nil, err
	}
	holds := append(slices.Clone(opts.Holds), writers...)
	kept, err := l.keptStates(ctx, res.Cutoff, now, holds, opts.IgnoreBranches, opts.DryRun)
	if err != nil {
		return nil, err
	}
	states := kept.states
	res.Commits, res.States, res.ExpiredCommits = kept.commits, len(states), kept.expired
	res.MergeBases = kept.mergeBases
	floor := now.Add(-opts.Grace)
	for _, h := range holds {
		if s := h.Since.Add(-writerSlack); s.Before(floor) {
			floor = s
		}
	}
	res.Writers = len(holds)

	// referenced maps the keys kept states reference to whether the
	// listing found them.
	referenced := make(map[string]bool, len(states)*4)
	unread, err := opts.Tables.ReferencedFiles(ctx, states, kept.since, func(key string) {
		referenced[key] = false
	})
	if err != nil {
		return nil, fmt.Errorf("gc: finding the files of %d table states: %w", len(states), err)
	}
	err = opts.Objects.List(ctx, "", func(o ObjectInfo) error {
		switch {
		case hasKey(referenced, o.Key):
			referenced[o.Key] = true
			res.Referenced++
			res.KeptBytes += o.Size
		case !o.ModTime.Before(floor):
			res.Recent++
			res.KeptBytes += o.Size
		default:
			res.Deleted = append(res.Deleted, GCFile{Key: o.Key, Size: o.Size})
			res.DeletedBytes += o.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: listing the warehouse: %w", err)
	}
	res.Missing = missingFiles(referenced, unread)
	slices.SortFunc(res.Deleted, func(a, b GCFile) int { return compareStrings(a.Key, b.Key) })
	if up, ok := opts.Objects.(Uploads); ok {
		if res.Uploads, err = up.AbortUploads(ctx, floor, opts.DryRun); err != nil {
			return nil, fmt.Errorf("gc: unfinished uploads: %w", err)
		}
	}
	if opts.DryRun {
		return res, nil
	}
	err = deleteAll(ctx, opts.Objects, res, opts.Parallel)
	if dirs, ok := opts.Objects.(EmptyDirs); ok && len(holds) == 0 {
		keys := make([]string, len(res.Deleted))
		for i, f := range res.Deleted {
			keys[i] = f.Key
		}
		var derr error
		res.RemovedDirs, derr = dirs.RemoveEmptyDirs(ctx, keys, floor, func(dir string) bool { return hasKey(referenced, dir+"/") })
		err = errors.Join(err, derr)
	}
	return res, err
}

func hasKey(m map[string]bool, k string) bool {
	_, ok := m[k]
	return ok
}

// missingFiles returns, sorted and each once, the files ReferencedFiles
// could not read (unread) and those it referenced that the listing did
// not find (false in referenced; folders, ending in '/', aside), or nil.
func missingFiles(referenced map[string]bool, unread []string) []string {
	set := make(map[string]bool, len(unread))
	for _, k := range unread {
		set[k] = true
	}
	for k, listed := range referenced {
		if !listed && !strings.HasSuffix(k, "/") {
			set[k] = true
		}
	}
	if len(set) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(set))
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// deleteAll deletes res.Deleted with up to parallel deletes at once. Files
// that could not be deleted leave res.Deleted; the error names the first.
func deleteAll(ctx context.Context, objs Objects, res *GCResult, parallel int) error {
	failed := make([]error, len(res.Deleted))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, max(len(res.Deleted), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := ctx.Err(); err != nil {
					failed[i] = err
					continue
				}
				failed[i] = objs.Delete(ctx, res.Deleted[i].Key)
			}
		}()
	}
	for i := range res.Deleted {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	var errs []error
	kept := res.Deleted[:0]
	for i, f := range res.Deleted {
		if failed[i] != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Key, failed[i]))
			res.DeletedBytes -= f.Size
			continue
		}
		kept = append(kept, f)
	}
	res.Deleted = kept
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("gc: %d file(s) could not be deleted (the %d others were): %w",
		len(errs), len(kept), errors.Join(errs[:min(len(errs), 5)]...))
}
