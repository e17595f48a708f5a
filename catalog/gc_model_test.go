package catalog_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// The GC model test drives a catalog on real Iceberg tables with random
// sequences of branch, tag, import (append and replace), merge, revert,
// rename, drop and failed-run operations, with files of killed imports
// dropped into the warehouse, and collects garbage at random points, once
// in a while with an import held open after writing its files, and often
// while runs are in flight (holding the commits they read). After each
// collection it checks that every table at every ref and every
// time-travel point within retention reads back the rows it read when
// first seen, and that what is left in the warehouse is what is
// referenced plus what is younger than the grace period.
//
// The files a table state references are tracked by the model, not asked
// of the format: the files an operation wrote (the warehouse before and
// after) plus those of the states it built on.

const (
	gcModelGrace    = 2 * time.Hour
	gcModelFailKeep = 12 * time.Hour // failed-run branches are expired after this
	gcModelExpire   = 36 * time.Hour // retention of the expiring runs
)

type gcModel struct {
	*gcEnv
	rng     *rand.Rand
	expire  time.Duration              // 0: all history is kept
	shadow  *gcEnv                     // with expire: the catalog that never collects (gc_shadow_test.go)
	files   map[string]map[string]bool // table state -> warehouse keys it references
	runs    map[string]time.Time       // failed-run branch -> when it failed
	running map[string]catalog.Hold    // runs in flight, by name: what they hold
	nextRun int
	log     []string
	// deleted, held and heldRuns count files gc deleted, imports it ran
	// beside, and its runs while runs were in flight; expired the commits
	// it expired, and combined the merges that combined appends after.
	deleted, held, heldRuns, expired, combined int
}

func TestGCModel(t *testing.T) {
	seed := *modelSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	ops := 60
	if testing.Short() {
		ops = 25
	}
	for i, expire := range []time.Duration{0, gcModelExpire, 0, gcModelExpire / 3} {
		s := seed + uint64(i)
		t.Run(fmt.Sprintf("%d-expire-%s", i, expire), func(t *testing.T) {
			m := &gcModel{gcEnv: newGCEnv(t), rng: rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)), expire: expire,
				files: map[string]map[string]bool{}, runs: map[string]time.Time{}, running: map[string]catalog.Hold{}}
			ops := ops
			if expire > 0 {
				m.shadow = newShadow(m)
				ops += ops / 2
			}
			defer func() {
				if t.Failed() {
					t.Logf("seed %d (-model.seed=%d reruns it); last operations:\n  %s", s, seed, strings.Join(m.log[max(0, len(m.log)-15):], "\n  "))
				}
			}()
			for range ops {
				m.step()
				if t.Failed() {
					return
				}
			}
			m.collect()
			t.Logf("seed %d: %d operations, gc deleted %d files and expired %d commits, %d gc runs beside an import held in flight (or failing before it wrote), %d while runs were; %d merges combined appends after history expired",
				s, ops, m.deleted, m.expired, m.held, m.heldRuns, m.combined)
		})
	}
}

func (m *gcModel) logf(format string, args ...any) {
	m.log = append(m.log, fmt.Sprintf(format, args...))
}

func (m *gcModel) pick(xs []string) string { return xs[m.rng.IntN(len(xs))] }

// writable lists the branches that take writes.
func (m *gcModel) writable() []string {
	bs, err := m.svc.ListBranches(m.ctx)
	if err != nil {
		m.t.Fatal(err)
	}
	var out []string
	for _, b := range bs {
		if b.Name != catalog.MainBranch {
			out = append(out, string(b.Name))
		}
	}
	return out
}

// refs lists every branch and tag.
func (m *gcModel) refs() []string {
	out := []string{string(catalog.MainBranch)}
	out = append(out, m.writable()...)
	tags, err := m.svc.ListTags(m.ctx)
	if err != nil {
		m.t.Fatal(err)
	}
	for _, tg := range tags {
		out = append(out, string(tg.Name))
	}
	return out
}

// someRef is a branch or tag, or a time on one.
func (m *gcModel) someRef() string {
	r := m.pick(m.refs())
	if m.rng.IntN(3) == 0 {
		ago := time.Duration(m.rng.IntN(48)) * time.Hour
		r += "@" + m.clock().Add(-ago).Format(time.RFC3339)
	}
	return r
}

// ok ignores the errors random operations may meet (a conflict, a time
// before a branch's first commit) and fails on others.
func (m *gcModel) ok(err error) bool {
	m.t.Helper()
	if err == nil {
		return true
	}
	if errdefs.Is(err, errdefs.ErrConflict) || errdefs.Is(err, errdefs.ErrNotFound) ||
		errdefs.Is(err, errdefs.ErrAlreadyExists) || errdefs.Is(err, errdefs.ErrFailedPrecondition) {
		m.logf("  -> %v", errdefs.Class(err))
		return false
	}
	m.t.Fatalf("%s: %v", m.log[len(m.log)-1], err)
	return false
}

// newFiles returns the warehouse keys that appeared since the last touch,
// and touches them.
func (m *gcModel) newFiles() []string {
	var out []string
	for _, k := range m.listKeys() {
		if !m.known[k] {
			out = append(out, k)
		}
	}
	m.touch()
	return out
}

// importInto imports rows into a table on a branch and tracks the files of
// the new state.
func (m *gcModel) importInto(branch, name string) {
	mode := catalog.ImportAppend
	if m.rng.IntN(4) == 0 && (m.shadow == nil || m.rng.IntN(2) == 0) {
		mode = catalog.ImportReplace
	}
	from := m.rng.IntN(1000)
	m.logf("import %s into %s on %s", mode, name, branch)
	parent := m.tablesAt(branch)[name]
	req := catalog.ImportRequest{Branch: catalog.BranchName(branch), Table: salesT(name),
		Sources: []string{m.csv(from, 1+m.rng.IntN(5))}, Mode: mode}
	err := m.mirror(func(e *gcEnv) error {
		_, err := e.svc.ImportTable(m.ctx, req)
		return err
	})
	m.imported(branch, name, parent, m.newFiles(), err)
}

// imported tracks the outcome of an import whose new files are fresh.
func (m *gcModel) imported(branch, name, parent string, fresh []string, err error) {
	if !m.ok(err) {
		return
	}
	loc := m.tablesAt(branch)[name]
	set := map[string]bool{}
	for _, k := range fresh {
		set[k] = true
	}
	maps.Copy(set, m.files[parent])
	m.files[loc] = set
	m.record(branch)
}

func (m *gcModel) step() {
	d := time.Duration(m.rng.IntN(180)) * time.Minute
	m.advance(d)
	if m.shadow != nil {
		m.shadow.advance(d)
	}
	ws := m.writable()
	if len(ws) == 0 {
		m.logf("branch create dev from main")
		m.must(nil, m.mirror(func(e *gcEnv) error {
			_, err := e.svc.CreateBranch(m.ctx, "dev", ref(m.t, "main"))
			return err
		}))
		ws = []string{"dev"}
	}
	tables := []string{"t0", "t1", "t2"}
	ops := 22
	if m.shadow != nil {
		ops = 26 // more merges: of branches that split before the cutoff too
	}
	switch op := m.rng.IntN(ops); {
	case op < 6:
		m.importInto(m.pick(ws), m.pick(tables))
	case op < 7:
		name := fmt.Sprintf("b%d", m.rng.IntN(6))
		from := m.someRef()
		m.logf("branch create %s from %s", name, from)
		if m.resolvable(from) {
			m.ok(m.mirror(func(e *gcEnv) error {
				_, err := e.svc.CreateBranch(m.ctx, catalog.BranchName(name), ref(m.t, from))
				return err
			}))
		}
	case op < 8:
		if len(ws) > 1 {
			b := m.pick(ws)
			m.logf("branch rm %s", b)
			m.ok(m.mirror(func(e *gcEnv) error { return e.svc.DeleteBranch(m.ctx, catalog.BranchName(b)) }))
		}
	case op < 9:
		name := fmt.Sprintf("v%d", m.rng.IntN(4))
		if m.rng.IntN(3) == 0 {
			m.logf("tag rm %s", name)
			m.ok(m.mirror(func(e *gcEnv) error { return e.svc.DeleteTag(m.ctx, catalog.TagName(name)) }))
			break
		}
		from := m.someRef()
		m.logf("tag create %s from %s", name, from)
		if m.resolvable(from) {
			m.ok(m.mirror(func(e *gcEnv) error {
				_, err := e.svc.CreateTag(m.ctx, catalog.TagName(name), ref(m.t, from))
				return err
			}))
		}
	case op < 11:
		m.merge(m.pick(ws), m.pick(append(ws, "main")))
	case op < 12:
		b, name, from := m.pick(ws), m.pick(tables), m.someRef()
		m.logf("revert %s on %s from %s", name, b, from)
		if m.resolvable(from) {
			m.ok(m.mirror(func(e *gcEnv) error {
				_, err := e.svc.RevertTable(m.ctx, catalog.BranchName(b), salesT(name), ref(m.t, from), catalog.CommitOptions{})
				return err
			}))
		}
	case op < 13:
		b := m.pick(ws)
		from, to := m.pick(tables), m.pick(tables)
		m.logf("rename %s to %s on %s", from, to, b)
		if _, ok := m.tablesAt(b)[from]; !ok || from == to {
			break
		}
		m.ok(m.mirror(func(e *gcEnv) error {
			entry, _, err := e.svc.TableEntry(m.ctx, ref(m.t, b), salesT(from))
			if err != nil {
				return err
			}
			_, err = e.svc.CommitTables(m.ctx, catalog.BranchName(b), "", catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{
				salesT(from): nil, salesT(to): &entry}}, catalog.CommitOptions{Message: "rename"})
			return err
		}))
	case op < 14:
		b, name := m.pick(ws), m.pick(tables)
		m.logf("drop %s on %s", name, b)
		m.ok(m.mirror(func(e *gcEnv) error {
			_, err := e.svc.DeleteTable(m.ctx, catalog.BranchName(b), salesT(name), catalog.CommitOptions{})
			return err
		}))
	case op < 15:
		m.orphan()
	case op < 16:
		m.failedRun(m.pick(ws), m.pick(tables))
	case op < 18:
		m.collect()
	case op < 20:
		m.inFlight(m.pick(ws), m.pick(tables))
	case op < 21:
		m.runStarts(m.pick(ws))
	case op < 22:
		m.runEnds()
	default:
		m.merge(m.pick(ws), m.pick(append(ws, "main")))
	}
}

// runStarts starts a run (in flight until runEnds) that reads the head of
// target: gc keeps what it reads, whatever happens to target meanwhile.
func (m *gcModel) runStarts(target string) {
	m.nextRun++
	name := fmt.Sprintf("run %d", m.nextRun)
	m.logf("%s starts on %s", name, target)
	m.running[name] = catalog.Hold{What: name, Since: m.clock(), Commits: []catalog.CommitID{m.head(target)}}
}

// runEnds ends a run in flight, if any.
func (m *gcModel) runEnds() {
	if len(m.running) == 0 {
		return
	}
	name := m.pick(slices.Sorted(maps.Keys(m.running)))
	m.logf("%s ends", name)
	delete(m.running, name)
}

// merge merges source into target and tracks states made by combining
// appends: they reference the target's files and the source's data files.
func (m *gcModel) merge(source, target string) {
	m.logf("merge %s into %s", source, target)
	ours, theirs := m.tablesAt(target), m.tablesAt(source)
	res, err := m.mirrorMerge(source, target)
	fresh := m.newFiles()
	var mc *catalog.MergeConflictError
	if errors.As(err, &mc) || !m.ok(err) {
		return
	}
	if m.expired > 0 && len(res.Combined) > 0 {
		m.combined++
	}
	after := m.tablesAt(target)
	for _, id := range res.Combined {
		name := strings.TrimPrefix(id, "sales.")
		loc := after[name]
		dir := m.tableDir(loc)
		set := map[string]bool{}
		for _, k := range fresh {
			if strings.HasPrefix(k, dir) {
				set[k] = true
			}
		}
		maps.Copy(set, m.files[ours[name]])
		for k := range m.files[theirs[name]] {
			if strings.Contains(k, "/data/") {
				set[k] = true
			}
		}
		m.files[loc] = set
	}
	m.record(target)
}

// orphan leaves what a killed import leaves: a file nothing references.
func (m *gcModel) orphan() {
	key := fmt.Sprintf("sales/t%d-killed/data/%04d.parquet", m.rng.IntN(3), m.rng.IntN(10000))
	m.logf("orphan %s", key)
	p := filepath.Join(m.dir, "wh", filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
		m.t.Fatal(err)
	}
	m.touch()
}

// failedRun does what a failed run does: it writes on a run branch, which
// stays for inspection until the failed-run retention has passed.
func (m *gcModel) failedRun(target, name string) {
	m.nextRun++
	b := fmt.Sprintf("u.run-%d", m.nextRun)
	m.logf("failed run %s from %s", b, target)
	if !m.ok(m.mirror(func(e *gcEnv) error {
		_, err := e.svc.CreateBranch(m.ctx, catalog.BranchName(b), ref(m.t, target))
		return err
	})) {
		return
	}
	m.importInto(b, name)
	m.runs[b] = m.clock()
}

// inFlight holds an import open after it wrote its files and collects
// garbage meanwhile, then lets it commit.
func (m *gcModel) inFlight(branch, name string) {
	m.logf("in-flight import into %s on %s, gc", name, branch)
	parent := m.tablesAt(branch)[name]
	from := m.rng.IntN(1000)
	release, done := m.heldImport(branch, name, from, 3)
	m.held++
	var held []string
	for _, k := range m.listKeys() {
		if !m.known[k] {
			held = append(held, k)
		}
	}
	m.collect()
	left := map[string]bool{}
	for _, k := range m.listKeys() {
		left[k] = true
	}
	for _, k := range held {
		if !left[k] {
			m.t.Fatalf("gc deleted %s, written by an import in flight", k)
		}
	}
	release()
	err := <-done
	if m.shadow != nil {
		if _, serr := m.shadow.importRows(branch, name, from, 3, ""); errClass(serr) != errClass(err) {
			m.t.Fatalf("%s: %v after gc, %v without", m.log[len(m.log)-1], err, serr)
		}
	}
	m.imported(branch, name, parent, m.newFiles(), err)
}

// collect expires failed-run branches past their retention (as `lakehouse
// gc` does), collects garbage, and checks.
func (m *gcModel) collect() {
	for b, failed := range m.runs {
		if m.clock().Sub(failed) > gcModelFailKeep {
			m.logf("expire failed run %s", b)
			err := m.mirror(func(e *gcEnv) error { return e.svc.DeleteBranch(m.ctx, catalog.BranchName(b)) })
			if err != nil && !errdefs.Is(err, errdefs.ErrNotFound) {
				m.t.Fatal(err)
			}
			delete(m.runs, b)
		}
	}
	m.logf("gc (%d runs in flight)", len(m.running))
	holds := slices.Collect(maps.Values(m.running))
	if len(holds) > 0 {
		m.heldRuns++
	}
	res := m.gc(catalog.GCOptions{Grace: gcModelGrace, ExpireCommits: m.expire, Holds: holds})
	m.deleted += len(res.Deleted)
	m.expired += res.ExpiredCommits
	m.logf("  -> deleted %d, referenced %d, recent %d, writers %d", len(res.Deleted), res.Referenced, res.Recent, res.Writers)
	if len(res.Missing) > 0 {
		m.t.Fatalf("gc found files of kept states missing: %v", res.Missing)
	}
	expected := map[string]bool{} // files of the states the check reads
	states := map[string]string{} // state -> where it is read
	for _, r := range m.refs() {
		for _, at := range m.timeTravel(r, res.Cutoff) {
			for name, loc := range m.tablesAt(at) {
				states[loc] = name + " at " + at
				maps.Copy(expected, m.files[loc])
			}
		}
	}
	for _, h := range holds {
		at := "@" + string(h.Commits[0])
		for name, loc := range m.tablesAt(at) {
			states[loc] = name + " read by " + h.What
			maps.Copy(expected, m.files[loc])
		}
	}
	for _, loc := range slices.Sorted(maps.Keys(states)) {
		m.checkState(loc, states[loc])
	}
	if m.shadow != nil {
		for _, r := range m.refs() {
			for _, at := range m.timeTravel(r, res.Cutoff) {
				if !strings.HasPrefix(at, "@") { // commit ids differ in the shadow
					m.sameAsShadow(at)
				}
			}
		}
	}
	everReferenced := map[string]bool{}
	for _, set := range m.files {
		maps.Copy(everReferenced, set)
	}
	left := map[string]time.Time{}
	err := m.format.Objects().List(m.ctx, "", func(o catalog.ObjectInfo) error {
		left[o.Key] = o.ModTime
		return nil
	})
	if err != nil {
		m.t.Fatal(err)
	}
	// With expiry, older snapshots of a kept state may go: then the reads
	// above are the check.
	for _, k := range slices.Sorted(maps.Keys(expected)) {
		if _, ok := left[k]; !ok && m.expire == 0 {
			m.t.Fatalf("gc deleted %s, which a kept state references", k)
		}
	}
	if res.Writers > 0 {
		return // files younger than the writer stay: nothing more to check
	}
	floor := m.clock().Add(-gcModelGrace)
	for _, k := range slices.Sorted(maps.Keys(left)) {
		if left[k].Before(floor) && !expected[k] && (m.expire == 0 || !everReferenced[k]) {
			m.t.Fatalf("gc left %s (modified %s, grace began %s): no kept state references it", k, left[k], floor)
		}
	}
}

// timeTravel lists the refs to check on ref r: r itself and, for every
// commit in its history within retention (all of it with no cutoff), the
// commit and the time it was made; with a cutoff also the time of the
// cutoff.
func (m *gcModel) timeTravel(r string, cutoff time.Time) []string {
	log, err := m.svc.Log(m.ctx, ref(m.t, r), 0)
	if err != nil {
		m.t.Fatal(err)
	}
	out := []string{r}
	for _, c := range log {
		if !cutoff.IsZero() && c.Time.Before(cutoff) {
			continue
		}
		out = append(out, "@"+string(c.ID), r+"@"+c.Time.Format(time.RFC3339Nano))
	}
	if !cutoff.IsZero() && !log[len(log)-1].Time.After(cutoff) {
		out = append(out, r+"@"+cutoff.Format(time.RFC3339Nano))
	}
	return out
}
