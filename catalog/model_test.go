package catalog_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

var (
	modelSeed = flag.Uint64("model.seed", 0, "seed of the model-based test (0: from the clock)")
	modelOps  = flag.Int("model.ops", 10000, "operations per model-based run")
)

// The model-based test drives the catalog with random sequences of branch,
// tag, commit, merge, revert and namespace operations and checks, after
// every step, that every branch and tag matches a plain in-memory model of
// the same semantics. The model is written to be obviously right rather
// than fast: merge bases by intersecting ancestor sets, trees as maps.

type mCommit struct {
	parents []catalog.CommitID
	height  uint64
	time    time.Time
	tables  map[string]string // "ns.table" -> state (fakeFormat op list)
	ns      map[string]bool
}

type model struct {
	commits  map[catalog.CommitID]*mCommit
	branches map[string]catalog.CommitID
	tags     map[string]catalog.CommitID
}

func (m *model) ancestors(id catalog.CommitID) map[catalog.CommitID]bool {
	out := map[catalog.CommitID]bool{}
	stack := []catalog.CommitID{id}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if out[c] {
			continue
		}
		out[c] = true
		stack = append(stack, m.commits[c].parents...)
	}
	return out
}

// mergeBase: among common ancestors the highest, ties to the latest, then
// to the smallest id.
func (m *model) mergeBase(a, b catalog.CommitID) catalog.CommitID {
	aa, bb := m.ancestors(a), m.ancestors(b)
	var best catalog.CommitID
	for c := range aa {
		if !bb[c] {
			continue
		}
		x, y := m.commits[c], m.commits[best]
		if best == "" || x.height > y.height ||
			x.height == y.height && x.time.After(y.time) ||
			x.height == y.height && x.time.Equal(y.time) && c < best {
			best = c
		}
	}
	return best
}

// resolve returns the commit a ref string denotes in the model, or the
// error class the catalog must return.
func (m *model) resolve(ref string) (catalog.CommitID, error) {
	name, at, hasAt := strings.Cut(ref, "@")
	if name == "" {
		for id := range m.commits {
			if strings.HasPrefix(string(id), at) {
				return id, nil
			}
		}
		return "", errdefs.ErrNotFound
	}
	head, ok := m.branches[name]
	if !ok {
		if head, ok = m.tags[name]; !ok {
			return "", errdefs.ErrNotFound
		}
	}
	if !hasAt {
		return head, nil
	}
	for id := range m.ancestors(head) {
		if strings.HasPrefix(string(id), at) {
			return id, nil
		}
	}
	return "", errdefs.ErrNotFound
}

type modelRun struct {
	t    *testing.T
	seed uint64
	rng  *rand.Rand
	svc  catalog.Service
	m    *model
	n    int // op counter for fake table states
	step int
	desc string
	op   string
	// outcomes counts op/result pairs, to show what a run exercised.
	outcomes map[string]int
}

func (r *modelRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d step %d (%s): %s\nrerun: go test ./catalog -run 'TestModel/%s' -model.seed=%d",
		r.seed, r.step, r.desc, fmt.Sprintf(format, args...), r.t.Name()[strings.LastIndex(r.t.Name(), "/")+1:], r.seed)
}

var (
	branchPool = []string{"main", "u.b0", "u.b1", "u.b2", "u.b3", "v.b4"}
	tagPool    = []string{"v0", "v1", "v2", "u.b1"}
	nsPool     = []string{"default", "s1", "s2"}
	tablePool  = []string{"default.t0", "default.t1", "default.t2", "s1.t0", "s1.t3", "s2.t4"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// randomRef returns a ref string: a branch, a tag, a detached commit, or a
// commit on a branch (which may or may not be in its history).
func (r *modelRun) randomRef() string {
	ids := slices.Sorted(maps.Keys(r.m.commits))
	switch r.rng.IntN(6) {
	case 0:
		return pick(r.rng, tagPool)
	case 1:
		return "@" + string(pick(r.rng, ids))[:12]
	case 2:
		return pick(r.rng, branchPool) + "@" + string(pick(r.rng, ids))[:10]
	default:
		return pick(r.rng, branchPool)
	}
}

func classOf(err error) error {
	if err == nil {
		return nil
	}
	return errdefs.Class(err)
}

func (r *modelRun) expect(got error, want error) {
	r.t.Helper()
	if classOf(got) != want {
		r.fatalf("error = %v (class %v), want class %v", got, classOf(got), want)
	}
	res := "ok"
	if want != nil {
		res = want.Error()
	}
	r.outcomes[r.op+"/"+res]++
}

func TestModel(t *testing.T) {
	seed := *modelSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	for _, b := range storeBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			t.Logf("seed %d, %d operations", seed, *modelOps)
			runModel(t, b.open(t), seed, *modelOps)
		})
	}
}

func runModel(t *testing.T, store catalog.Store, seed uint64, ops int) {
	ctx := context.Background()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svc, err := catalog.NewLocal(ctx, store, fakeFormat{}, catalog.LocalOptions{Author: "model",
		Now: func() time.Time { clock = clock.Add(time.Millisecond); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	main, err := svc.GetBranch(ctx, catalog.MainBranch)
	if err != nil {
		t.Fatal(err)
	}
	m := &model{
		commits:  map[catalog.CommitID]*mCommit{main.Head: {height: 1, time: main.Commit.Time, tables: map[string]string{}, ns: map[string]bool{"default": true}}},
		branches: map[string]catalog.CommitID{"main": main.Head},
		tags:     map[string]catalog.CommitID{},
	}
	r := &modelRun{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), svc: svc, m: m,
		outcomes: map[string]int{}}
	for r.step = 0; r.step < ops; r.step++ {
		var op string
		switch x := r.rng.IntN(100); {
		case x < 10:
			op = "branch-create"
		case x < 14:
			op = "branch-delete"
		case x < 18:
			op = "tag-create"
		case x < 20:
			op = "tag-delete"
		case x < 55:
			op = "commit"
		case x < 80:
			op = "merge"
		case x < 90:
			op = "revert"
		default:
			op = "namespace"
		}
		r.op = op
		r.do(ctx, op)
		r.check(ctx)
	}
	t.Logf("outcomes: %v; commits: %d", r.outcomes, len(m.commits))
}

func (r *modelRun) do(ctx context.Context, op string) {
	m := r.m
	switch op {
	case "branch-create":
		name, from := pick(r.rng, branchPool[1:]), r.randomRef()
		r.desc = fmt.Sprintf("branch create %s --from-ref %s", name, from)
		_, err := r.svc.CreateBranch(ctx, catalog.BranchName(name), mustRef(r, from))
		_, isB := m.branches[name]
		_, isT := m.tags[name]
		want, werr := m.resolve(from)
		switch {
		case isB || isT:
			r.expect(err, errdefs.ErrAlreadyExists)
		case werr != nil:
			r.expect(err, werr)
		default:
			r.expect(err, nil)
			m.branches[name] = want
		}
	case "branch-delete":
		name := pick(r.rng, branchPool)
		r.desc = "branch rm " + name
		err := r.svc.DeleteBranch(ctx, catalog.BranchName(name))
		_, ok := m.branches[name]
		switch {
		case name == "main":
			r.expect(err, errdefs.ErrFailedPrecondition)
		case !ok:
			r.expect(err, errdefs.ErrNotFound)
		default:
			r.expect(err, nil)
			delete(m.branches, name)
		}
	case "tag-create":
		name, from := pick(r.rng, tagPool), r.randomRef()
		r.desc = fmt.Sprintf("tag create %s --from-ref %s", name, from)
		_, err := r.svc.CreateTag(ctx, catalog.TagName(name), mustRef(r, from))
		_, isB := m.branches[name]
		_, isT := m.tags[name]
		want, werr := m.resolve(from)
		switch {
		case isB || isT:
			r.expect(err, errdefs.ErrAlreadyExists)
		case werr != nil:
			r.expect(err, werr)
		default:
			r.expect(err, nil)
			m.tags[name] = want
		}
	case "tag-delete":
		name := pick(r.rng, tagPool)
		r.desc = "tag rm " + name
		err := r.svc.DeleteTag(ctx, catalog.TagName(name))
		if _, ok := m.tags[name]; !ok {
			r.expect(err, errdefs.ErrNotFound)
		} else {
			r.expect(err, nil)
			delete(m.tags, name)
		}
	case "commit":
		r.doCommit(ctx)
	case "merge":
		r.doMerge(ctx)
	case "revert":
		r.doRevert(ctx)
	case "namespace":
		r.doNamespace(ctx)
	}
}

// branchGate returns the error class a write to branch must get before
// anything else is looked at, or nil.
func (r *modelRun) branchGate(b string) error {
	if b == "main" {
		return errdefs.ErrFailedPrecondition
	}
	if _, ok := r.m.branches[b]; !ok {
		if _, ok := r.m.tags[b]; ok {
			return errdefs.ErrFailedPrecondition
		}
		return errdefs.ErrNotFound
	}
	return nil
}

// newCommit records a commit the catalog made and checks its parents.
func (r *modelRun) newCommit(ctx context.Context, c *catalog.Commit, parents []catalog.CommitID, tables map[string]string, ns map[string]bool) {
	r.t.Helper()
	if !slices.Equal(c.Parents, parents) {
		r.fatalf("new commit %s has parents %v, want %v", c.ID.Short(), c.Parents, parents)
	}
	h := uint64(0)
	for _, p := range parents {
		h = max(h, r.m.commits[p].height+1)
	}
	if c.Height != h {
		r.fatalf("new commit height %d, want %d", c.Height, h)
	}
	r.m.commits[c.ID] = &mCommit{parents: parents, height: h, time: c.Time, tables: tables, ns: ns}
}

func (r *modelRun) doCommit(ctx context.Context) {
	m := r.m
	b := pick(r.rng, branchPool)
	// The base: usually the head, sometimes a stale first-parent ancestor.
	base, haveHead := m.branches[b]
	if haveHead && r.rng.IntN(5) == 0 {
		for k := r.rng.IntN(3) + 1; k > 0 && len(m.commits[base].parents) > 0; k-- {
			base = m.commits[base].parents[0]
		}
	}
	if !haveHead {
		base = pick(r.rng, slices.Sorted(maps.Keys(m.commits)))
	}
	bt := m.commits[base]
	changes := map[string]*string{}
	for k := r.rng.IntN(3) + 1; k > 0; k-- {
		tbl := pick(r.rng, tablePool)
		ns, _, _ := strings.Cut(tbl, ".")
		cur, exists := bt.tables[tbl]
		r.n++
		var v *string
		switch x := r.rng.IntN(10); {
		case !exists && bt.ns[ns]:
			s := fmt.Sprintf("r%d", r.n)
			v = &s
		case !exists:
			continue
		case x < 6:
			s := cur + fmt.Sprintf(",a%d", r.n)
			v = &s
		case x < 9:
			s := fmt.Sprintf("r%d", r.n)
			v = &s
		}
		changes[tbl] = v
	}
	var desc []string
	ch := catalog.Changes{Tables: map[catalog.TableIdent]*catalog.TableEntry{}}
	for _, tbl := range slices.Sorted(maps.Keys(changes)) {
		id, _ := catalog.ParseTableIdent(tbl, "")
		if v := changes[tbl]; v == nil {
			ch.Tables[id] = nil
			desc = append(desc, tbl+"=<drop>")
		} else {
			ch.Tables[id] = &catalog.TableEntry{MetadataLocation: *v}
			desc = append(desc, tbl+"="+*v)
		}
	}
	r.desc = fmt.Sprintf("commit to %s on base %s: %s", b, base.Short(), strings.Join(desc, " "))
	c, err := r.svc.CommitTables(ctx, catalog.BranchName(b), base, ch, catalog.CommitOptions{Message: r.desc})
	if g := r.branchGate(b); g != nil {
		r.expect(err, g)
		return
	}
	head := m.branches[b]
	ht := m.commits[head]
	for tbl := range changes {
		bv, bok := bt.tables[tbl]
		hv, hok := ht.tables[tbl]
		if bok != hok || bv != hv {
			r.expect(err, errdefs.ErrConflict)
			return
		}
	}
	tables := maps.Clone(ht.tables)
	for tbl, v := range changes {
		if v == nil {
			delete(tables, tbl)
		} else {
			tables[tbl] = *v
		}
	}
	for tbl := range tables {
		if ns, _, _ := strings.Cut(tbl, "."); !ht.ns[ns] {
			r.expect(err, errdefs.ErrFailedPrecondition)
			return
		}
	}
	r.expect(err, nil)
	if maps.Equal(tables, ht.tables) {
		if c.ID != head {
			r.fatalf("no-op commit moved the head to %s", c.ID.Short())
		}
		return
	}
	r.newCommit(ctx, c, []catalog.CommitID{head}, tables, maps.Clone(ht.ns))
	m.branches[b] = c.ID
}

func (r *modelRun) doMerge(ctx context.Context) {
	m := r.m
	into, src := pick(r.rng, branchPool), r.randomRef()
	mode := catalog.MergeFFAllowed
	switch r.rng.IntN(10) {
	case 0:
		mode = catalog.MergeFFOnly
	case 1:
		mode = catalog.MergeNoFF
	}
	r.desc = fmt.Sprintf("merge %s --into %s (%q)", src, into, mode)
	res, err := r.svc.Merge(ctx, catalog.MergeRequest{Source: mustRef(r, src), Into: catalog.BranchName(into), Mode: mode})
	if into != "main" {
		if g := r.branchGate(into); g != nil {
			r.expect(err, g)
			return
		}
	}
	target, ok := m.branches[into]
	if !ok {
		r.expect(err, errdefs.ErrNotFound)
		return
	}
	source, serr := m.resolve(src)
	if serr != nil {
		r.expect(err, serr)
		return
	}
	base := m.mergeBase(target, source)
	switch {
	case base == source:
		r.expect(err, nil)
		r.outcomes["merge/up-to-date"]++
		if res.Outcome != "up-to-date" {
			r.fatalf("outcome %s, want up-to-date", res.Outcome)
		}
		return
	case base == target && mode != catalog.MergeNoFF:
		r.expect(err, nil)
		r.outcomes["merge/fast-forward"]++
		if res.Outcome != "fast-forward" {
			r.fatalf("outcome %s, want fast-forward", res.Outcome)
		}
		m.branches[into] = source
		return
	case mode == catalog.MergeFFOnly:
		r.expect(err, errdefs.ErrFailedPrecondition)
		return
	}
	bt, tt, st := m.commits[base], m.commits[target], m.commits[source]
	ns := maps.Clone(tt.ns)
	conflict := false
	for _, n := range nsPool {
		switch {
		case st.ns[n] == bt.ns[n], st.ns[n] == tt.ns[n]:
		case tt.ns[n] == bt.ns[n]:
			if st.ns[n] {
				ns[n] = true
			} else {
				delete(ns, n)
			}
		}
	}
	tables := maps.Clone(tt.tables)
	for _, tbl := range tablePool {
		b, bok := bt.tables[tbl]
		t, tok := tt.tables[tbl]
		s, sok := st.tables[tbl]
		same := func(x string, xok bool, y string, yok bool) bool { return xok == yok && x == y }
		switch {
		case same(s, sok, b, bok), same(t, tok, s, sok):
		case same(t, tok, b, bok):
			if sok {
				tables[tbl] = s
			} else {
				delete(tables, tbl)
			}
		case !bok || !tok || !sok:
			conflict = true
		default:
			merged, ok := mergeAppendOps(b, t, s)
			if !ok {
				conflict = true
			}
			tables[tbl] = merged
		}
	}
	for tbl := range tables {
		if n, _, _ := strings.Cut(tbl, "."); !ns[n] {
			conflict = true
		}
	}
	if conflict {
		r.expect(err, errdefs.ErrConflict)
		return
	}
	r.expect(err, nil)
	if res.Outcome != "merge" {
		r.fatalf("outcome %s, want merge", res.Outcome)
	}
	r.newCommit(ctx, res.Commit, []catalog.CommitID{target, source}, tables, ns)
	m.branches[into] = res.Commit.ID
}

func (r *modelRun) doRevert(ctx context.Context) {
	m := r.m
	b, tbl, from := pick(r.rng, branchPool), pick(r.rng, tablePool), r.randomRef()
	r.desc = fmt.Sprintf("table revert %s --from %s -b %s", tbl, from, b)
	id, _ := catalog.ParseTableIdent(tbl, "")
	c, err := r.svc.RevertTable(ctx, catalog.BranchName(b), id, mustRef(r, from), catalog.CommitOptions{})
	if g := r.branchGate(b); g != nil {
		r.expect(err, g)
		return
	}
	src, serr := m.resolve(from)
	if serr != nil {
		r.expect(err, serr)
		return
	}
	head := m.branches[b]
	ht, ft := m.commits[head], m.commits[src]
	fv, fok := ft.tables[tbl]
	_, hok := ht.tables[tbl]
	if !fok && !hok {
		r.expect(err, errdefs.ErrNotFound)
		return
	}
	r.expect(err, nil)
	tables, ns := maps.Clone(ht.tables), maps.Clone(ht.ns)
	if fok {
		tables[tbl] = fv
		n, _, _ := strings.Cut(tbl, ".")
		ns[n] = true
	} else {
		delete(tables, tbl)
	}
	if maps.Equal(tables, ht.tables) && maps.Equal(ns, ht.ns) {
		if c.ID != head {
			r.fatalf("no-op revert moved the head")
		}
		return
	}
	r.newCommit(ctx, c, []catalog.CommitID{head}, tables, ns)
	m.branches[b] = c.ID
}

func (r *modelRun) doNamespace(ctx context.Context) {
	m := r.m
	b, n := pick(r.rng, branchPool), pick(r.rng, nsPool)
	create := r.rng.IntN(2) == 0
	var (
		c   *catalog.Commit
		err error
	)
	if create {
		r.desc = fmt.Sprintf("namespace create %s -b %s", n, b)
		c, err = r.svc.CreateNamespace(ctx, catalog.BranchName(b), catalog.Namespace(n), catalog.CommitOptions{})
	} else {
		r.desc = fmt.Sprintf("namespace rm %s -b %s", n, b)
		c, err = r.svc.DeleteNamespace(ctx, catalog.BranchName(b), catalog.Namespace(n), catalog.CommitOptions{})
	}
	if g := r.branchGate(b); g != nil {
		r.expect(err, g)
		return
	}
	head := m.branches[b]
	ht := m.commits[head]
	ns := maps.Clone(ht.ns)
	switch {
	case create && ht.ns[n]:
		r.expect(err, errdefs.ErrAlreadyExists)
		return
	case !create && !ht.ns[n]:
		r.expect(err, errdefs.ErrNotFound)
		return
	case create:
		ns[n] = true
	default:
		for tbl := range ht.tables {
			if strings.HasPrefix(tbl, n+".") {
				r.expect(err, errdefs.ErrFailedPrecondition)
				return
			}
		}
		delete(ns, n)
	}
	r.expect(err, nil)
	r.newCommit(ctx, c, []catalog.CommitID{head}, maps.Clone(ht.tables), ns)
	m.branches[b] = c.ID
}

// check compares every branch and tag, and the content of every branch
// head, with the model.
func (r *modelRun) check(ctx context.Context) {
	r.t.Helper()
	branches, err := r.svc.ListBranches(ctx)
	if err != nil {
		r.fatalf("list branches: %v", err)
	}
	got := map[string]catalog.CommitID{}
	for _, b := range branches {
		got[string(b.Name)] = b.Head
	}
	if !maps.Equal(got, r.m.branches) {
		r.fatalf("branches = %v, model %v", got, r.m.branches)
	}
	tags, err := r.svc.ListTags(ctx)
	if err != nil {
		r.fatalf("list tags: %v", err)
	}
	gotT := map[string]catalog.CommitID{}
	for _, tg := range tags {
		gotT[string(tg.Name)] = tg.Commit
	}
	if !maps.Equal(gotT, r.m.tags) {
		r.fatalf("tags = %v, model %v", gotT, r.m.tags)
	}
	for _, name := range sortedKeys(r.m.branches) {
		ref := catalog.Ref{Name: name}
		mc := r.m.commits[r.m.branches[name]]
		nss, err := r.svc.ListNamespaces(ctx, ref)
		if err != nil {
			r.fatalf("namespaces of %s: %v", name, err)
		}
		gotNS := map[string]bool{}
		for _, n := range nss {
			gotNS[string(n)] = true
		}
		if !maps.Equal(gotNS, mc.ns) {
			r.fatalf("namespaces of %s = %v, model %v", name, gotNS, mc.ns)
		}
		tbls, err := r.svc.ListTables(ctx, ref, "")
		if err != nil {
			r.fatalf("tables of %s: %v", name, err)
		}
		gotTables := map[string]string{}
		for _, tb := range tbls {
			gotTables[tb.Ident.String()] = tb.Metadata
		}
		if !maps.Equal(gotTables, mc.tables) {
			r.fatalf("tables of %s = %v, model %v", name, gotTables, mc.tables)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func mustRef(r *modelRun, s string) catalog.Ref {
	ref, err := catalog.ParseRef(s)
	if err != nil {
		r.fatalf("model produced an invalid ref %q: %v", s, err)
	}
	return ref
}
