package catalog_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// The GC model's shadow (runs that expire history) is a second catalog on
// its own warehouse that takes every operation the model's catalog takes
// and never collects. Whatever gc lets go, what stays must behave as in
// the shadow: each operation ends alike (the same error class, the same
// merge outcome, conflicts and combined tables) and after each merge and
// each collection every table at every ref, and at every time within
// retention, reads the same rows. Merges of branches that split before
// the cutoff are where a collection that let go of their merge base's
// files would show.

// newShadow starts the shadow of m, on m's clock from its first commit:
// a shadow started on the wall clock made its first commits a second after
// the model's when the second turned between the two, and a time travel to
// exactly the model's first commit found nothing in the shadow.
func newShadow(m *gcModel) *gcEnv {
	s := newGCEnvAt(m.t, m.clock())
	for _, e := range []*gcEnv{m.gcEnv, s} {
		log, err := e.svc.Log(m.ctx, ref(m.t, "main"), 0)
		if err != nil {
			m.t.Fatal(err)
		}
		if first := log[len(log)-1].Time; !first.Equal(m.clock()) {
			m.t.Fatalf("main's first commit is at %s, not at the model's start %s", first, m.clock())
		}
	}
	return s
}

// mirror runs op on the model's catalog and on the shadow, fails if they
// end differently, and returns the model's error.
func (m *gcModel) mirror(op func(e *gcEnv) error) error {
	m.t.Helper()
	err := op(m.gcEnv)
	if m.shadow == nil {
		return err
	}
	if serr := op(m.shadow); errClass(serr) != errClass(err) {
		m.t.Fatalf("%s: %v after gc, %v without", m.log[len(m.log)-1], err, serr)
	}
	return err
}

func errClass(err error) string {
	if err == nil {
		return "ok"
	}
	return errdefs.ClassName(err)
}

// resolvable reports whether ref r still resolves on the model's catalog:
// a time before the history gc expired does not (and does in the shadow),
// so an operation from there is left out of both.
func (m *gcModel) resolvable(r string) bool {
	if m.shadow == nil {
		return true
	}
	if _, err := m.svc.Resolve(m.ctx, ref(m.t, r)); err != nil {
		m.logf("  -> %s does not resolve (%v): skipped", r, errdefs.Class(err))
		return false
	}
	return true
}

// mirrorMerge merges source into target on both and compares the
// outcomes; it returns the model's.
func (m *gcModel) mirrorMerge(source, target string) (*catalog.MergeResult, error) {
	req := catalog.MergeRequest{Source: ref(m.t, source), Into: catalog.BranchName(target)}
	res, err := m.svc.Merge(m.ctx, req)
	if m.shadow == nil {
		return res, err
	}
	sres, serr := m.shadow.svc.Merge(m.ctx, req)
	if got, want := mergeSummary(res, err), mergeSummary(sres, serr); got != want {
		m.t.Fatalf("%s: %s after gc, %s without", m.log[len(m.log)-1], got, want)
	}
	if err == nil {
		m.sameAsShadow(target)
	}
	return res, err
}

// mergeSummary is what must match between the model and the shadow.
func mergeSummary(res *catalog.MergeResult, err error) string {
	var mc *catalog.MergeConflictError
	if errors.As(err, &mc) {
		return fmt.Sprintf("conflicts %v", mc.Conflicts)
	}
	if err != nil {
		return "error " + errClass(err)
	}
	return fmt.Sprintf("%s combining %v changing %v", res.Outcome, res.Combined, res.Changed)
}

// sameAsShadow fails unless every table at ref r reads the same rows on
// the model's catalog as on the shadow.
func (m *gcModel) sameAsShadow(r string) {
	m.t.Helper()
	got, want := m.tablesAt(r), m.shadow.tablesAt(r)
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		m.t.Fatalf("tables at %s: %v after gc, %v without", r, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for name, loc := range got {
		a, b := m.rowsOf(m.gcEnv, loc), m.rowsOf(m.shadow, want[name])
		if !slices.Equal(a, b) {
			m.t.Fatalf("table %s at %s reads %d rows after gc, %d without", name, r, len(a), len(b))
		}
	}
}

// rowsOf reads a table state of e once (states never change).
func (m *gcModel) rowsOf(e *gcEnv, loc string) []string {
	m.t.Helper()
	if rows, ok := e.rows[loc]; ok {
		return rows
	}
	rows, err := e.readState(loc)
	if err != nil {
		m.t.Fatalf("reading %s: %v", loc, err)
	}
	e.rows[loc] = rows
	return rows
}
