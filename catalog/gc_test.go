package catalog_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/catalog/iceberg"
	"github.com/lakehouse-dev/lakehouse/catalog/memstore"
	"github.com/lakehouse-dev/lakehouse/catalog/warehouse"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// gcEnv is a catalog on real Iceberg tables in a temporary warehouse, with
// a clock the test moves. Files get the clock's time as their modification
// time when the test notices them (touch), so that the grace period is
// counted in the test's time.
type gcEnv struct {
	t      testing.TB
	ctx    context.Context
	dir    string
	format *iceberg.Format
	held   *heldFormat
	svc    *catalog.Local
	mu     sync.Mutex
	now    time.Time
	known  map[string]bool     // warehouse keys seen
	rows   map[string][]string // metadata location -> rows read when first seen
	csvN   int
	remote bool // the warehouse is on S3: files keep the store's times
}

func newGCEnv(t testing.TB) *gcEnv {
	t.Helper()
	return newGCEnvAt(t, time.Now())
}

// newGCEnvAt starts the test's clock at start.
func newGCEnvAt(t testing.TB, start time.Time) *gcEnv {
	t.Helper()
	return newGCEnvWith(t, start, nil)
}

// newGCEnvOn is newGCEnv on the warehouse st (nil: a local one). On S3,
// files keep the store's modification times (real ones, before the test's
// clock once it moved on), and readState cannot read the tables.
func newGCEnvOn(t testing.TB, st warehouse.Storage) *gcEnv {
	t.Helper()
	return newGCEnvWith(t, time.Now(), st)
}

func newGCEnvWith(t testing.TB, start time.Time, st warehouse.Storage) *gcEnv {
	t.Helper()
	dir := t.TempDir()
	opts := iceberg.Options{Warehouse: filepath.Join(dir, "wh")}
	if st != nil {
		opts.Storage, opts.CacheDir = st, filepath.Join(dir, "cache")
	}
	f, err := iceberg.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &gcEnv{t: t, ctx: context.Background(), dir: dir, format: f, now: start.UTC().Truncate(time.Second),
		known: map[string]bool{}, rows: map[string][]string{}, remote: st != nil}
	e.held = &heldFormat{TableFormat: f}
	svc, err := catalog.NewLocal(e.ctx, memstore.New(), e.held, catalog.LocalOptions{Author: "gc", Now: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	e.svc = svc
	e.must(e.svc.CreateBranch(e.ctx, "dev", catalog.Ref{Name: "main"}))
	e.must(e.svc.CreateNamespace(e.ctx, "dev", "sales", catalog.CommitOptions{}))
	return e
}

func (e *gcEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// advance moves the clock.
func (e *gcEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *gcEnv) must(_ any, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// heldFormat is the real format whose imports can be held open after
// writing their files and before the catalog commits them: an import in
// flight.
type heldFormat struct {
	catalog.TableFormat
	mu      sync.Mutex
	written chan struct{} // receives when a held import has written
	release chan struct{} // closed to let it commit
}

func (h *heldFormat) Import(ctx context.Context, spec catalog.ImportSpec) (*catalog.ImportOutcome, error) {
	out, err := h.TableFormat.Import(ctx, spec)
	h.pause()
	return out, err
}

// pause waits for release if a hold is set, after telling written.
func (h *heldFormat) pause() {
	h.mu.Lock()
	written, release := h.written, h.release
	h.written, h.release = nil, nil
	h.mu.Unlock()
	if written != nil {
		written <- struct{}{}
		<-release
	}
}

// MergeAppends is the real one, held like an import when a hold is set.
func (h *heldFormat) MergeAppends(ctx context.Context, id catalog.TableIdent, base, ours, theirs catalog.TableEntry) (catalog.TableEntry, bool, error) {
	merged, ok, err := h.TableFormat.MergeAppends(ctx, id, base, ours, theirs)
	h.pause()
	return merged, ok, err
}

// heldImport starts an import of n rows into table name on branch that
// is held open once it has written its files: release lets it commit, and
// done then receives its error. An import that fails before writing is
// not held: done has its error at once.
func (e *gcEnv) heldImport(branch, name string, from, n int) (release func(), done chan error) {
	written, rel := make(chan struct{}, 1), make(chan struct{})
	e.held.mu.Lock()
	e.held.written, e.held.release = written, rel
	e.held.mu.Unlock()
	src := e.csv(from, n)
	finished := make(chan error, 1)
	go func() {
		_, err := e.svc.ImportTable(e.ctx, catalog.ImportRequest{Branch: catalog.BranchName(branch), Table: salesT(name),
			Sources: []string{src}})
		finished <- err
	}()
	select {
	case <-written:
		return func() { close(rel) }, finished
	case err := <-finished:
		e.held.mu.Lock()
		e.held.written, e.held.release = nil, nil
		e.held.mu.Unlock()
		finished <- err
		return func() {}, finished
	}
}

func salesT(name string) catalog.TableIdent {
	return catalog.TableIdent{Namespace: "sales", Name: name}
}

func ref(t testing.TB, s string) catalog.Ref {
	t.Helper()
	r, err := catalog.ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// csv writes a CSV file of n rows id,v starting at id from.
func (e *gcEnv) csv(from, n int) string {
	e.csvN++
	var b strings.Builder
	b.WriteString("id,v\n")
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "%d,v%d\n", i, i)
	}
	p := filepath.Join(e.dir, "src", fmt.Sprintf("f%04d.csv", e.csvN))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// importRows imports n rows into table name on branch.
func (e *gcEnv) importRows(branch, name string, from, n int, mode catalog.ImportMode) (*catalog.ImportResult, error) {
	res, err := e.svc.ImportTable(e.ctx, catalog.ImportRequest{Branch: catalog.BranchName(branch), Table: salesT(name),
		Sources: []string{e.csv(from, n)}, Mode: mode})
	e.touch()
	return res, err
}

// touch gives files the test has not seen yet the clock's time.
func (e *gcEnv) touch() {
	e.t.Helper()
	if e.remote {
		return
	}
	now := e.clock()
	for _, k := range e.listKeys() {
		if !e.known[k] {
			e.known[k] = true
			p := filepath.Join(e.dir, "wh", filepath.FromSlash(k))
			if err := os.Chtimes(p, now, now); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

func (e *gcEnv) listKeys() []string {
	e.t.Helper()
	var keys []string
	err := e.format.Objects().List(e.ctx, "", func(o catalog.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// gc collects with the test's clock.
func (e *gcEnv) gc(opts catalog.GCOptions) *catalog.GCResult {
	e.t.Helper()
	opts.Objects, opts.Tables, opts.Now = e.format.Objects(), e.format, e.clock
	res, err := e.svc.GC(e.ctx, opts)
	if err != nil {
		e.t.Fatalf("gc: %v", err)
	}
	for _, f := range res.Deleted {
		if !opts.DryRun {
			delete(e.known, f.Key)
		}
	}
	return res
}

// doctor checks the catalog.
func (e *gcEnv) doctor() *catalog.DoctorReport {
	e.t.Helper()
	r, err := e.svc.Doctor(e.ctx)
	if err != nil {
		e.t.Fatalf("doctor: %v", err)
	}
	return r
}

// readState reads every row of a table state through iceberg-go's own scan.
func (e *gcEnv) readState(loc string) ([]string, error) {
	tbl, err := table.NewFromLocation(e.ctx, table.Identifier{"sales", "t"}, loc, iceio.LoadFSFunc(nil, loc), nil)
	if err != nil {
		return nil, err
	}
	at, err := tbl.Scan().ToArrowTable(e.ctx)
	if err != nil {
		return nil, err
	}
	defer at.Release()
	var rows []string
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for r := 0; r < int(rec.NumRows()); r++ {
			parts := make([]string, rec.NumCols())
			for c := range parts {
				parts[c] = rec.Column(c).ValueStr(r)
			}
			rows = append(rows, strings.Join(parts, "|"))
		}
	}
	sort.Strings(rows)
	return rows, nil
}

// tablesAt returns the table entries at a ref.
func (e *gcEnv) tablesAt(r string) map[string]string {
	e.t.Helper()
	ts, err := e.svc.ListTables(e.ctx, ref(e.t, r), "")
	if err != nil {
		e.t.Fatalf("tables at %s: %v", r, err)
	}
	out := map[string]string{}
	for _, s := range ts {
		out[s.Name] = s.Metadata
	}
	return out
}

// record reads (once) the rows of every table at ref r, so that later
// checks can compare.
func (e *gcEnv) record(r string) {
	e.t.Helper()
	for name, loc := range e.tablesAt(r) {
		if _, ok := e.rows[loc]; ok {
			continue
		}
		rows, err := e.readState(loc)
		if err != nil {
			e.t.Fatalf("reading %s at %s: %v", name, r, err)
		}
		e.rows[loc] = rows
	}
}

// check fails unless every table at ref r reads back the rows recorded.
func (e *gcEnv) check(r string) {
	e.t.Helper()
	for name, loc := range e.tablesAt(r) {
		e.checkState(loc, name+" at "+r)
	}
}

// checkState fails unless table state loc (named by where) reads back the
// rows recorded.
func (e *gcEnv) checkState(loc, where string) {
	e.t.Helper()
	want, ok := e.rows[loc]
	if !ok {
		e.t.Fatalf("table %s: state %s was never recorded", where, loc)
	}
	got, err := e.readState(loc)
	if err != nil {
		e.t.Fatalf("table %s after gc: %v", where, err)
	}
	if !slices.Equal(got, want) {
		e.t.Fatalf("table %s after gc reads %d rows, want %d", where, len(got), len(want))
	}
}

func (e *gcEnv) head(branch string) catalog.CommitID {
	e.t.Helper()
	b, err := e.svc.GetBranch(e.ctx, catalog.BranchName(branch))
	if err != nil {
		e.t.Fatal(err)
	}
	return b.Head
}

// deletedUnder counts deleted files whose key contains part.
func deletedUnder(res *catalog.GCResult, part string) int {
	n := 0
	for _, f := range res.Deleted {
		if strings.Contains(f.Key, part) {
			n++
		}
	}
	return n
}

// tableDir is the warehouse key prefix of a table state's lineage.
func (e *gcEnv) tableDir(metadataLoc string) string {
	rel, err := filepath.Rel(filepath.Join(e.dir, "wh"), filepath.Dir(filepath.Dir(metadataLoc)))
	if err != nil {
		e.t.Fatal(err)
	}
	return filepath.ToSlash(rel) + "/"
}

// TestGCOrphansAndGrace: files no state references go once older than the
// grace period; younger ones stay; a dry run deletes nothing.
func TestGCOrphansAndGrace(t *testing.T) {
	e := newGCEnv(t)
	e.must(e.importRows("dev", "t", 0, 10, ""))
	e.record("dev")
	orphan := filepath.Join(e.dir, "wh", "sales", "killed-import", "data", "x.parquet")
	if err := os.MkdirAll(filepath.Dir(orphan), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("half a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.touch()
	e.advance(time.Hour)
	if res := e.gc(catalog.GCOptions{Grace: 2 * time.Hour}); len(res.Deleted) != 0 || res.Recent == 0 {
		t.Fatalf("within the grace period gc deleted %v (recent %d)", res.Deleted, res.Recent)
	}
	e.advance(2 * time.Hour)
	res := e.gc(catalog.GCOptions{Grace: 2 * time.Hour, DryRun: true})
	if len(res.Deleted) != 1 || res.Deleted[0].Key != "sales/killed-import/data/x.parquet" || res.DeletedBytes != 11 {
		t.Fatalf("dry run reports %+v, want the orphan of 11 bytes", res.Deleted)
	}
	if _, err := os.Stat(orphan); err != nil {
		t.Fatalf("a dry run deleted the orphan: %v", err)
	}
	res = e.gc(catalog.GCOptions{Grace: 2 * time.Hour})
	if len(res.Deleted) != 1 {
		t.Fatalf("gc deleted %v, want the orphan", res.Deleted)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatalf("the orphan is still there: %v", err)
	}
	e.check("dev")
}

// TestGCRemovesEmptiedFolders: on a local warehouse, the folders gc's
// deletes emptied go (a killed import's, a dropped table's), never the
// warehouse root nor the folder of a table in use, even when gc emptied
// one of its folders; while an import is in flight, folders stay.
func TestGCRemovesEmptiedFolders(t *testing.T) {
	// The clock runs a month behind the files an import writes, so that
	// the files older than the grace period go while it is in flight.
	e := newGCEnvAt(t, time.Now().Add(-30*24*time.Hour))
	wh := filepath.Join(e.dir, "wh")
	e.must(e.importRows("dev", "t", 0, 10, ""))
	e.must(e.svc.CreateBranch(e.ctx, "tmp", ref(t, "dev")))
	e.must(e.importRows("tmp", "u", 0, 10, ""))
	e.must(nil, e.svc.DeleteBranch(e.ctx, "tmp"))
	orphan := filepath.Join(wh, "sales", "killed-import", "data", "x.parquet")
	extra := filepath.Join(wh, "sales", "t-orphans", "data", "y.parquet")
	for _, p := range []string{orphan, extra} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.touch()
	tables, err := filepath.Glob(filepath.Join(wh, "sales", "t-*-*"))
	if err != nil || len(tables) != 1 {
		t.Fatalf("the table's folder: %v, %v", tables, err)
	}
	// An empty folder inside the table in use, as if gc had emptied it.
	inUse := filepath.Join(tables[0], "data", "old")
	if err := os.MkdirAll(inUse, 0o755); err != nil {
		t.Fatal(err)
	}
	oldFile := filepath.Join(inUse, "z.parquet")
	if err := os.WriteFile(oldFile, []byte("z"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.touch()
	e.advance(48 * time.Hour)

	// In flight: files go, folders stay.
	release, done := e.heldImport("dev", "t", 100, 3)
	res := e.gc(catalog.GCOptions{Grace: time.Hour})
	if len(res.RemovedDirs) != 0 || len(res.Deleted) == 0 {
		t.Fatalf("gc with an import in flight deleted %v, removed folders %v", res.Deleted, res.RemovedDirs)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.touch()
	e.record("dev")
	for _, p := range []string{orphan, extra, oldFile} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.touch()
	// The folders the first gc emptied and left are dated by the clock
	// too: once older than the grace period, they go.
	e.ageDirs(wh)
	e.advance(48 * time.Hour)
	res = e.gc(catalog.GCOptions{Grace: time.Hour})
	if len(res.Deleted) != 3 {
		t.Fatalf("gc deleted %v", res.Deleted)
	}
	for _, d := range []string{"sales/killed-import", "sales/killed-import/data", "sales/t-orphans", "sales/t-orphans/data"} {
		if !slices.Contains(res.RemovedDirs, d) {
			t.Errorf("folder %s was not removed (removed %v)", d, res.RemovedDirs)
		}
		if _, err := os.Stat(filepath.Join(wh, filepath.FromSlash(d))); !os.IsNotExist(err) {
			t.Errorf("folder %s is still there: %v", d, err)
		}
	}
	if us, _ := filepath.Glob(filepath.Join(wh, "sales", "u-*")); len(us) != 0 {
		t.Errorf("the dropped table's folders are still there: %v", us)
	}
	if _, err := os.Stat(inUse); err != nil {
		t.Errorf("gc removed a folder of the table in use: %v", err)
	}
	e.check("dev")
	// Everything dropped: every folder goes but the warehouse root.
	e.must(nil, e.svc.DeleteBranch(e.ctx, "dev"))
	e.ageDirs(wh)
	e.advance(48 * time.Hour)
	e.gc(catalog.GCOptions{Grace: time.Hour})
	left, err := os.ReadDir(wh)
	if err != nil || len(left) != 0 {
		t.Fatalf("the warehouse after everything went: %v, %v", left, err)
	}
}

// ageDirs gives every folder under dir the clock's time.
func (e *gcEnv) ageDirs(dir string) {
	e.t.Helper()
	now := e.clock()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chtimes(p, now, now)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// TestGCSharedFilesAfterRenameAndRevert (DuckLake #527/#815): a table
// renamed, and a table reverted to another's state, share files with the
// original; dropping the original and expiring its history must keep them.
func TestGCSharedFilesAfterRenameAndRevert(t *testing.T) {
	e := newGCEnv(t)
	e.must(e.importRows("dev", "a", 0, 10, ""))
	e.must(e.importRows("dev", "a", 10, 5, ""))
	e.record("dev")
	a := e.tablesAt("dev")["a"]
	// Rename a to b in one commit.
	entry, _, err := e.svc.TableEntry(e.ctx, ref(t, "dev"), salesT("a"))
	if err != nil {
		t.Fatal(err)
	}
	e.advance(time.Hour)
	e.must(e.svc.CommitTables(e.ctx, "dev", e.head("dev"), catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{
		salesT("a"): nil, salesT("b"): &entry}}, catalog.CommitOptions{Message: "rename a to b"}))
	// c takes a's state by revert on another branch, then a's branch
	// history goes past retention.
	e.must(e.svc.CreateBranch(e.ctx, "other", ref(t, "main")))
	e.must(e.svc.CreateNamespace(e.ctx, "other", "sales", catalog.CommitOptions{}))
	cEntry := entry
	e.must(e.svc.CommitTables(e.ctx, "other", "", catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{salesT("c"): &cEntry}}, catalog.CommitOptions{}))
	e.must(e.svc.DeleteTable(e.ctx, "dev", salesT("b"), catalog.CommitOptions{}))
	e.touch()
	e.advance(72 * time.Hour)
	e.must(e.importRows("dev", "d", 0, 1, "")) // a head within the retention
	e.record("dev")
	res := e.gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 24 * time.Hour})
	if n := deletedUnder(res, e.tableDir(a)+"data/"); n != 0 {
		t.Fatalf("gc deleted %d data files of the state table c shares: %v", n, res.Deleted)
	}
	e.check("other")
	if got := e.tablesAt("other")["c"]; got != a {
		t.Fatalf("c is %s, want a's state %s", got, a)
	}
	// Once c is gone too, a's files go.
	e.must(e.svc.DeleteTable(e.ctx, "other", salesT("c"), catalog.CommitOptions{}))
	e.advance(72 * time.Hour)
	e.must(e.importRows("dev", "d", 1, 1, ""))
	e.must(e.importRows("other", "d", 1, 1, ""))
	res = e.gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 24 * time.Hour})
	if n := deletedUnder(res, e.tableDir(a)); n == 0 {
		t.Fatalf("gc kept every file of the dropped table's lineage: %v", res.Deleted)
	}
	e.record("dev")
	e.check("dev")
}

// TestGCTableDroppedOnOneBranchAliveOnAnother (Nessie #10046, lakeFS
// #4658): a table dropped on one branch, with that branch's history past
// retention, keeps its files for the branch where it lives.
func TestGCTableDroppedOnOneBranchAliveOnAnother(t *testing.T) {
	e := newGCEnv(t)
	e.must(e.importRows("dev", "t", 0, 20, ""))
	e.must(e.svc.CreateBranch(e.ctx, "keep", ref(t, "dev")))
	e.record("keep")
	e.must(e.svc.DeleteTable(e.ctx, "dev", salesT("t"), catalog.CommitOptions{}))
	e.must(nil, e.svc.DeleteBranch(e.ctx, "dev"))
	e.touch()
	e.advance(40 * 24 * time.Hour)
	e.must(e.svc.CreateBranch(e.ctx, "dev", ref(t, "main")))
	res := e.gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 30 * 24 * time.Hour})
	if len(res.Deleted) != 0 {
		t.Fatalf("gc deleted files of a table alive on another branch: %v", res.Deleted)
	}
	e.check("keep")
	// Dropped everywhere: its files go.
	e.must(nil, e.svc.DeleteBranch(e.ctx, "keep"))
	res = e.gc(catalog.GCOptions{Grace: time.Hour})
	if len(res.Deleted) == 0 {
		t.Fatal("gc kept the files of a table no ref holds")
	}
	if keys := e.listKeys(); len(keys) != 0 {
		t.Fatalf("files left: %v", keys)
	}
}

// TestGCInFlightImport (Nessie #12363): an import that has written its
// files and not yet committed keeps them, even when they are older than
// the grace period; once it commits they are referenced.
func TestGCInFlightImport(t *testing.T) {
	e := newGCEnv(t)
	e.must(e.importRows("dev", "t", 0, 10, ""))
	e.record("dev")
	// The clock runs ahead of the files' times: the files the import
	// writes now are past the grace period, held only as in flight.
	e.advance(48 * time.Hour)
	release, done := e.heldImport("dev", "t", 100, 7)
	before := e.listKeys()
	res := e.gc(catalog.GCOptions{Grace: time.Hour})
	if len(res.Deleted) != 0 || res.Writers != 1 {
		t.Fatalf("gc during an import deleted %v (writers %d)", res.Deleted, res.Writers)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if after := e.listKeys(); len(after) != len(before) {
		t.Fatalf("%d files while the import was held, %d after it committed", len(before), len(after))
	}
	e.touch()
	e.record("dev")
	e.advance(48 * time.Hour)
	e.gc(catalog.GCOptions{Grace: time.Hour})
	e.check("dev")
	if rows := e.rows[e.tablesAt("dev")["t"]]; len(rows) != 17 {
		t.Fatalf("the table has %d rows, want 17", len(rows))
	}
}

// TestGCInFlightImportKeepsItsBase: the state an in-flight import builds
// on stays while it writes, even when in the meantime nothing else holds
// it (the table dropped, that history expired) — the import can still
// commit onto it (a revert brought it back).
func TestGCInFlightImportKeepsItsBase(t *testing.T) {
	// The clock runs a month behind the files the import writes, so the
	// older files are held by what references them, not by their age.
	e := newGCEnvAt(t, time.Now().Add(-30*24*time.Hour))
	e.must(e.importRows("dev", "t", 0, 10, ""))
	e.record("dev")
	base := e.head("dev")
	release, done := e.heldImport("dev", "t", 100, 7)
	e.advance(time.Hour)
	e.must(e.svc.DeleteTable(e.ctx, "dev", salesT("t"), catalog.CommitOptions{}))
	e.advance(48 * time.Hour)
	e.must(e.svc.CreateNamespace(e.ctx, "dev", "other", catalog.CommitOptions{}))
	res := e.gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: time.Hour})
	if len(res.Deleted) != 0 {
		t.Fatalf("gc deleted the base of an in-flight import: %v", res.Deleted)
	}
	e.must(e.svc.RevertTable(e.ctx, "dev", salesT("t"), ref(t, "@"+string(base)), catalog.CommitOptions{}))
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.touch()
	e.record("dev")
	e.check("dev")
	if rows := e.rows[e.tablesAt("dev")["t"]]; len(rows) != 17 {
		t.Fatalf("the table has %d rows, want 17", len(rows))
	}
}

// TestGCDeadWriterHoldsNothing: the writer record of an import whose
// process is gone (killed) holds nothing, and gc removes it.
func TestGCDeadWriterHoldsNothing(t *testing.T) {
	e := newGCEnv(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	rec := fmt.Sprintf(`{"pid":%d,"boot":%q,"started":%q,"commits":[],"what":"import"}`,
		cmd.Process.Pid, bootID(t), time.Now().UTC().Format(time.RFC3339Nano))
	err := e.svc.Store().Update(e.ctx, func(tx catalog.Tx) error { return tx.PutRecord("writer", "0123456789abcdef", []byte(rec)) })
	if err != nil {
		t.Fatal(err)
	}
	if res := e.gc(catalog.GCOptions{Grace: time.Hour, DryRun: true}); res.Writers != 0 {
		t.Fatalf("a dead writer counts as in flight (%d)", res.Writers)
	}
	e.gc(catalog.GCOptions{Grace: time.Hour})
	err = e.svc.Store().View(e.ctx, func(tx catalog.Tx) error {
		return tx.ListRecords("writer", "", func(k string, _ []byte) error { return fmt.Errorf("record %s is left", k) })
	})
	if err != nil {
		t.Fatal(err)
	}
}

func bootID(t testing.TB) string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestGCTimeTravelWithinRetention (DuckLake #815): every time within the
// retention reads what it read before gc, including the state in effect at
// the cutoff; a tag holds an older commit; older states go.
func TestGCTimeTravelWithinRetention(t *testing.T) {
	e := newGCEnv(t)
	var times []time.Time
	for day := range 10 {
		mode := catalog.ImportAppend
		if day%3 == 2 {
			mode = catalog.ImportReplace
		}
		e.must(e.importRows("dev", "t", day*10, 10, mode))
		times = append(times, e.clock())
		e.record("dev")
		if day == 1 {
			e.must(e.svc.CreateTag(e.ctx, "v1", ref(t, "dev")))
		}
		e.advance(24 * time.Hour)
	}
	logBefore, err := e.svc.Log(e.ctx, ref(t, "dev"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Retention of 4.5 days: commits of days 6..9 are within it, day 5's
	// is the state at the cutoff.
	res := e.gc(catalog.GCOptions{Grace: time.Hour, ExpireCommits: 4*24*time.Hour + 12*time.Hour})
	if len(res.Deleted) == 0 {
		t.Fatal("expiring history deleted nothing")
	}
	cutoff := res.Cutoff
	for i, at := range times {
		r := "dev@" + at.Format(time.RFC3339Nano)
		if at.Before(cutoff) && i != 5 {
			continue
		}
		e.check(r)
	}
	e.check("dev@" + cutoff.Format(time.RFC3339Nano))
	e.check("v1")
	e.check("dev")
	e.checkExpiredLog(res, logBefore, "dev", 5)
	// Expired history stays expired: a later gc keeping all history, and
	// doctor, do not look for its files.
	if again := e.gc(catalog.GCOptions{Grace: time.Hour}); len(again.Missing) != 0 || len(again.Deleted) != 0 {
		t.Fatalf("gc after history expired: missing %v, deleted %v", again.Missing, again.Deleted)
	}
	if rep, err := e.svc.Doctor(e.ctx); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("doctor after history expired: %+v, %v", rep, err)
	}
}

// checkExpiredLog checks that after res the log of branch holds the
// commits made at or after the cutoff and the one in effect at it, which
// is the oldest, and no other; that the commits of before left it for
// good (not found by id, nor by time travel); and that res counted them.
func (e *gcEnv) checkExpiredLog(res *catalog.GCResult, before []*catalog.Commit, branch string, wantKept int) {
	e.t.Helper()
	log, err := e.svc.Log(e.ctx, ref(e.t, branch), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(log) != wantKept {
		e.t.Fatalf("the log of %s has %d commits after gc, want %d", branch, len(log), wantKept)
	}
	for i, c := range log {
		if c.Time.Before(res.Cutoff) && i != len(log)-1 {
			e.t.Fatalf("commit %s of %s, before the cutoff %s, is still in the log", c.ID.Short(), c.Time, res.Cutoff)
		}
	}
	kept := map[catalog.CommitID]bool{}
	for _, c := range log {
		kept[c.ID] = true
	}
	gone := 0
	for _, c := range before {
		if kept[c.ID] {
			continue
		}
		gone++
		if _, err := e.svc.Resolve(e.ctx, ref(e.t, "@"+string(c.ID))); !errdefs.Is(err, errdefs.ErrNotFound) &&
			!e.isHead(c.ID) {
			e.t.Fatalf("expired commit %s resolves: %v", c.ID.Short(), err)
		}
	}
	if gone == 0 || res.ExpiredCommits == 0 {
		e.t.Fatalf("%d commits left the log, gc counted %d expired", gone, res.ExpiredCommits)
	}
	oldest := log[len(log)-1]
	if _, err := e.svc.Resolve(e.ctx, ref(e.t, branch+"@"+oldest.Time.Add(-time.Second).Format(time.RFC3339Nano))); !errdefs.Is(err, errdefs.ErrNotFound) ||
		!strings.Contains(err.Error(), "expired") {
		e.t.Fatalf("time travel before the kept history: %v", err)
	}
}

// isHead reports whether a branch or tag points at id.
func (e *gcEnv) isHead(id catalog.CommitID) bool {
	ts, err := e.svc.ListTags(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	bs, err := e.svc.ListBranches(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, t := range ts {
		if t.Commit == id {
			return true
		}
	}
	for _, b := range bs {
		if b.Head == id {
			return true
		}
	}
	return false
}

// TestGCRunningHold: a running run holds the commit it reads, even when
// no ref holds it any more.
func TestGCRunningHold(t *testing.T) {
	e := newGCEnv(t)
	e.must(e.importRows("dev", "t", 0, 10, ""))
	e.record("dev")
	start := e.head("dev")
	e.must(nil, e.svc.DeleteBranch(e.ctx, "dev"))
	e.advance(48 * time.Hour)
	hold := catalog.Hold{What: "run 1234", Since: e.clock(), Commits: []catalog.CommitID{start}}
	if res := e.gc(catalog.GCOptions{Grace: time.Hour, Holds: []catalog.Hold{hold}}); len(res.Deleted) != 0 {
		t.Fatalf("gc deleted files a running run reads: %v", res.Deleted)
	}
	e.check("@" + string(start))
	if res := e.gc(catalog.GCOptions{Grace: time.Hour}); len(res.Deleted) == 0 {
		t.Fatal("once the run ended its files stayed")
	}
}

// TestGCMergeOfDeletedSource: a merge whose source branch is deleted while
// it combines appends does not commit, so it cannot bring back states gc
// may have let go meanwhile.
func TestGCMergeOfDeletedSource(t *testing.T) {
	e := newGCEnv(t)
	e.must(e.importRows("dev", "t", 0, 10, ""))
	e.must(e.svc.CreateBranch(e.ctx, "feature", ref(t, "dev")))
	e.must(e.importRows("dev", "t", 10, 1, ""))
	e.must(e.importRows("feature", "t", 20, 1, ""))
	written, rel := make(chan struct{}, 1), make(chan struct{})
	e.held.mu.Lock()
	e.held.written, e.held.release = written, rel
	e.held.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.Merge(e.ctx, catalog.MergeRequest{Source: ref(t, "feature"), Into: "dev"})
		done <- err
	}()
	<-written
	e.must(nil, e.svc.DeleteBranch(e.ctx, "feature"))
	close(rel)
	if err := <-done; !errdefs.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("merge of a source deleted meanwhile: %v, want not found", err)
	}
	if got := e.tablesAt("dev")["t"]; got == "" || len(e.mustRows(got)) != 11 {
		t.Fatalf("dev changed: %s", got)
	}
}

func (e *gcEnv) mustRows(loc string) []string {
	e.t.Helper()
	rows, err := e.readState(loc)
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// TestGCMissingFiles: a manifest list deleted behind the catalog's back is
// reported as missing; gc still runs and deletes nothing it should keep.
func TestGCMissingFiles(t *testing.T) {
	e := newGCEnv(t)
	e.must(e.importRows("dev", "t", 0, 10, ""))
	e.must(e.importRows("dev", "u", 0, 10, ""))
	e.record("dev")
	var gone string
	for _, k := range e.listKeys() {
		if strings.HasPrefix(k, "sales/t-") && strings.Contains(k, "/snap-") {
			gone = k
		}
	}
	if err := os.Remove(filepath.Join(e.dir, "wh", filepath.FromSlash(gone))); err != nil {
		t.Fatal(err)
	}
	e.advance(48 * time.Hour)
	res := e.gc(catalog.GCOptions{Grace: time.Hour})
	if len(res.Missing) != 1 || !strings.HasSuffix(res.Missing[0], gone) {
		t.Fatalf("missing %v, want %s", res.Missing, gone)
	}
	if len(res.Deleted) != 0 {
		t.Fatalf("gc deleted %v", res.Deleted)
	}
	e.checkState(e.tablesAt("dev")["u"], "u at dev")
}

// TestGCDamagedCatalogDeletesNothing: when a kept commit cannot be read,
// gc cannot know what is kept and deletes nothing.
func TestGCDamagedCatalogDeletesNothing(t *testing.T) {
	e := newGCEnv(t)
	e.must(e.importRows("dev", "t", 0, 10, ""))
	err := e.svc.Store().Update(e.ctx, func(tx catalog.Tx) error {
		return tx.PutRef(catalog.KindTag, "lost", catalog.CommitID(strings.Repeat("ab", 32)))
	})
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(e.dir, "wh", "sales", "t-killed", "x.parquet")
	if err := os.MkdirAll(filepath.Dir(orphan), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.touch()
	before := e.listKeys()
	e.advance(48 * time.Hour)
	_, err = e.svc.GC(e.ctx, catalog.GCOptions{Objects: e.format.Objects(), Tables: e.format, Now: e.clock, Grace: time.Hour})
	if !errdefs.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "lakehouse doctor") {
		t.Fatalf("gc on a damaged catalog: %v", err)
	}
	if after := e.listKeys(); !slices.Equal(after, before) {
		t.Fatalf("files changed: %v -> %v", before, after)
	}
}
